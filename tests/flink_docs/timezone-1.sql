-- Flink's documentation: docs/content/docs/dev/table/timezone.md
-- TIMESTAMP type: from a string literal.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.
-- Pending (Weir cannot run it yet): a query without a FROM (no streaming source).

CREATE TABLE Result (
  ts TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT TIMESTAMP '1970-01-01 00:00:04.001';
