-- Nexmark Query 1: currency conversion. Converts each bid's price from
-- dollars to euros: a simple transformation.

-- The Nexmark bid stream (Flink nexmark's bid view), 100 000 events here;
-- 'weir bench queries/nexmark --events N' sets 'number-of-events' to N.
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

CREATE TABLE nexmark_q1 (
  auction  BIGINT,
  bidder   BIGINT,
  price    DECIMAL(23, 3),
  dateTime TIMESTAMP(3),
  extra    VARCHAR
) WITH ('connector' = 'blackhole');

INSERT INTO nexmark_q1
SELECT
    auction,
    bidder,
    0.908 * price AS price, -- convert dollar to euro
    dateTime,
    extra
FROM bid;
