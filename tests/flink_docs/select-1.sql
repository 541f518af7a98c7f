-- Flink's documentation: docs/content/docs/dev/table/sql/queries/select.md
-- inline data from a VALUES clause (the page: each tuple corresponds to one row).
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.

CREATE TABLE Result (
  order_id INT,
  price DECIMAL(2, 1)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT order_id, price FROM (VALUES (1, 2.0), (2, 3.1))  AS t (order_id, price);
