-- Flink's documentation: docs/content/docs/sql/reference/queries/window-join.md
-- INNER/LEFT/RIGHT/FULL OUTER: the FULL JOIN example.
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
  L_Num INT,
  L_Id STRING,
  R_Num INT,
  R_Id STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT L.num as L_Num, L.id as L_Id, R.num as R_Num, R.id as R_Id,
           COALESCE(L.window_start, R.window_start) as window_start,
           COALESCE(L.window_end, R.window_end) as window_end
           FROM (
               SELECT * FROM TABLE(TUMBLE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
           ) L
           FULL JOIN (
               SELECT * FROM TABLE(TUMBLE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
           ) R
           ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
