-- Flink's documentation: docs/content/docs/sql/reference/queries/window-join.md
-- ANTI: with NOT IN.
-- LeftTable's rows arrive as the page lists them, L3 (12:03) after L2 (12:06); the page's result joins L3,
-- as Flink does when both rows come before a (periodic) watermark: so the sources keep the default periodic
-- watermark, not 'on-event', under which L3 would be late.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.

CREATE TABLE LeftTable (
  row_time TIMESTAMP(3),
  num INT,
  id STRING,
  WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/left.csv',
  'format' = 'csv'
);
CREATE TABLE RightTable (
  row_time TIMESTAMP(3),
  num INT,
  id STRING,
  WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/right.csv',
  'format' = 'csv'
);
CREATE TABLE Result (
  row_time TIMESTAMP(3),
  num INT,
  id STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT *
           FROM (
               SELECT * FROM TABLE(TUMBLE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
           ) L WHERE L.num NOT IN (
             SELECT num FROM (   
               SELECT * FROM TABLE(TUMBLE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
             ) R WHERE L.window_start = R.window_start AND L.window_end = R.window_end);
