-- Flink's documentation: docs/content/docs/sql/reference/queries/window-agg.md
-- Windowing TVFs: session window aggregation with partition keys.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.
-- Pending (Weir cannot run it yet): a window TVF called without TABLE(...) (FROM SESSION(TABLE Bid PARTITION BY ...)).

CREATE TABLE Bid (
  bidtime TIMESTAMP(3),
  price DECIMAL(10, 2),
  item STRING,
  supplier_id STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/bid_supplier.csv',
  'format' = 'csv',
  'scan.watermark.emit.strategy' = 'on-event'
);
CREATE TABLE Result (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  supplier_id STRING,
  total_price DECIMAL(38, 2)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT window_start, window_end, supplier_id, SUM(price) AS total_price
           FROM SESSION(TABLE Bid PARTITION BY supplier_id, DESCRIPTOR(bidtime), INTERVAL '2' MINUTES)
           GROUP BY window_start, window_end, supplier_id;
