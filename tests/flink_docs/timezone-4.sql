-- Flink's documentation: docs/content/docs/dev/table/timezone.md
-- TIMESTAMP_LTZ string representation: MyView2 in UTC.
-- A TIMESTAMP_LTZ value is shown by the docs in the session's zone; the sink's column is TIMESTAMP(3),
-- into which the value is written as that zone's wall-clock time, so that the print sink shows what the docs show.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.
-- Pending (Weir cannot run it yet): a query without a FROM (no streaming source), through a view.

CREATE VIEW MyView2 AS SELECT TO_TIMESTAMP_LTZ(4001, 3) AS ltz, TIMESTAMP '1970-01-01 00:00:01.001'  AS ntz;
SET 'table.local-time-zone' = 'UTC';
CREATE TABLE Result (
  ltz TIMESTAMP(3),
  ntz TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT * FROM MyView2;
