-- Nexmark Query 18: each bidder's last bid on each auction. Flink's
-- deduplication keeping the last row by event time: a bid replaces the
-- pair's earlier one (an update), as an upsert table of the latest bids.

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
  'events-per-second' = '10000000',
  'number-of-events' = '100000',
  'rate-limited' = 'false',
  'first-event-time' = '2026-01-01 00:00:00'
);

CREATE TABLE nexmark_q18 (
  auction  BIGINT,
  bidder   BIGINT,
  price    BIGINT,
  channel  VARCHAR,
  url      VARCHAR,
  dateTime TIMESTAMP(3),
  extra    VARCHAR
) WITH ('connector' = 'blackhole');

INSERT INTO nexmark_q18
SELECT auction, bidder, price, channel, url, dateTime, extra
 FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS rank_number
       FROM bid)
 WHERE rank_number <= 1;
