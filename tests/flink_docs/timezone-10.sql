-- Flink's documentation: docs/content/docs/dev/table/timezone.md
-- Event Time Attribute on TIMESTAMP_LTZ: MyView5 in Asia/Shanghai (windows on Shanghai's clock).
-- The page reads a socket that never ends, so the window [22:10, 22:20) of the last row never fires there;
-- the CSV file here ends, its final watermark fires that window too, and its row is expected as well.
-- A TIMESTAMP_LTZ value is shown by the docs in the session's zone; the sink's column is TIMESTAMP(3),
-- into which the value is written as that zone's wall-clock time, so that the print sink shows what the docs show.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.
-- Pending (Weir cannot run it yet): CREATE VIEW over a table whose name is not lower case (MyTable3).

CREATE TABLE MyTable3 (
                  item STRING,
                  price DOUBLE,
                  ts BIGINT, -- long time value in epoch milliseconds
                  ts_ltz AS TO_TIMESTAMP_LTZ(ts, 3),
                  WATERMARK FOR ts_ltz AS ts_ltz - INTERVAL '10' SECOND
            ) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/mytable3.csv',
  'format' = 'csv',
  'scan.watermark.emit.strategy' = 'on-event'
);
CREATE VIEW MyView5 AS
            SELECT
                TUMBLE_START(ts_ltz, INTERVAL '10' MINUTES) AS window_start,
                TUMBLE_END(ts_ltz, INTERVAL '10' MINUTES) AS window_end,
                TUMBLE_ROWTIME(ts_ltz, INTERVAL '10' MINUTES) as window_rowtime,
                item,
                MAX(price) as max_price
            FROM MyTable3
                GROUP BY TUMBLE(ts_ltz, INTERVAL '10' MINUTES), item;
SET 'table.local-time-zone' = 'Asia/Shanghai';
CREATE TABLE Result (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_rowtime TIMESTAMP(3),
  item STRING,
  max_price DOUBLE
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT * FROM MyView5;
