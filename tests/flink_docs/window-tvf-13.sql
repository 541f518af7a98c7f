-- Flink's documentation: docs/content/docs/sql/reference/queries/window-tvf.md
-- TUMBLE: the windowed rows (the page's form without TABLE(...)).
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.
-- Pending (Weir cannot run it yet): a window TVF called without TABLE(...).

CREATE TABLE Bid (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/bid.csv',
  'format' = 'csv',
  'scan.watermark.emit.strategy' = 'on-event'
);
CREATE TABLE Result (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT * FROM TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES);
