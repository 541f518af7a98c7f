-- Flink's documentation: docs/content/docs/dev/table/sql/queries/group-agg.md
-- GROUPING SETS.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.

CREATE TABLE Result (
  supplier_id STRING,
  rating INT,
  total BIGINT
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT supplier_id, rating, COUNT(*) AS total
FROM (VALUES
    ('supplier1', 'product1', 4),
    ('supplier1', 'product2', 3),
    ('supplier2', 'product3', 3),
    ('supplier2', 'product4', 4))
AS Products(supplier_id, product_id, rating)
GROUP BY GROUPING SETS ((supplier_id, rating), (supplier_id), ());
