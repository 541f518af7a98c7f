-- Window Top-N: the three auctions with the most bids in each 10-second
-- tumbling window, emitted once per window (Flink's window Top-N over a
-- window aggregation). queries/window-top-n/agg.sql is the aggregation
-- under it alone.

-- 100 000 bids a second of event time: at 10M events, 100 s, ten windows
-- of some 60 000 auctions each.
-- The Nexmark bid stream (Flink nexmark's views), 100 000
-- events here; 'weir bench queries/nexmark --events N' sets
-- 'number-of-events' to N.
CREATE TABLE bid (
  auction  BIGINT,
  bidder   BIGINT,
  price    BIGINT,
  channel  VARCHAR,
  url      VARCHAR,
  dateTime TIMESTAMP(3),
  extra    VARCHAR,
  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
  'connector' = 'nexmark',
  'nexmark.table' = 'bid',
  'events-per-second' = '100000',
  'number-of-events' = '100000',
  'rate-limited' = 'false',
  'first-event-time' = '2026-01-01 00:00:00'
);

CREATE TABLE hot_auctions (
  window_start TIMESTAMP(3),
  auction      BIGINT,
  bids         BIGINT,
  rn           BIGINT
) WITH ('connector' = 'blackhole');

INSERT INTO hot_auctions
SELECT window_start, auction, bids, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY bids DESC) AS rn
  FROM (
    SELECT window_start, window_end, auction, COUNT(*) AS bids
    FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, auction))
WHERE rn <= 3;
