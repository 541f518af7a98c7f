-- Flink's documentation: docs/content/docs/dev/table/timezone.md
-- Event Time Attribute on TIMESTAMP: MyView4 in UTC.
-- The page reads a socket that never ends, so the window [14:10, 14:20) of the last row never fires there;
-- the CSV file here ends, its final watermark fires that window too, and its row is expected as well.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.
-- Pending (Weir cannot run it yet): CREATE VIEW over a table whose name is not lower case (MyTable2).

CREATE TABLE MyTable2 (
                  item STRING,
                  price DOUBLE,
                  ts TIMESTAMP(3), -- TIMESTAMP data type
                  WATERMARK FOR ts AS ts - INTERVAL '10' SECOND
            ) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/mytable2.csv',
  'format' = 'csv',
  'scan.watermark.emit.strategy' = 'on-event'
);
CREATE VIEW MyView4 AS
            SELECT
                TUMBLE_START(ts, INTERVAL '10' MINUTES) AS window_start,
                TUMBLE_END(ts, INTERVAL '10' MINUTES) AS window_end,
                TUMBLE_ROWTIME(ts, INTERVAL '10' MINUTES) as window_rowtime,
                item,
                MAX(price) as max_price
            FROM MyTable2
                GROUP BY TUMBLE(ts, INTERVAL '10' MINUTES), item;
SET 'table.local-time-zone' = 'UTC';
CREATE TABLE Result (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_rowtime TIMESTAMP(3),
  item STRING,
  max_price DOUBLE
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT * FROM MyView4;
