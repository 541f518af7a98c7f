-- Flink's documentation: docs/content/docs/sql/reference/queries/window-tvf.md
-- CUMULATE: aggregation with emit-only-on-update mode.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.

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
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  total_price DECIMAL(38, 2)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT window_start, window_end, SUM(price) AS total_price
  FROM CUMULATE(
    TABLE Bid, 
    DESCRIPTOR(bidtime), 
    INTERVAL '2' MINUTES, 
    INTERVAL '10' MINUTES,
    INTERVAL '0' SECOND,  -- offset
    true                  -- emitOnlyOnUpdate
  )
  GROUP BY window_start, window_end;
