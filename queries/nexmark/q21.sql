-- Nexmark Query 21: add a channel id (not in the original suite). A
-- CASE WHEN over the channel and a regular expression over the URL.

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

CREATE TABLE nexmark_q21 (
  auction    BIGINT,
  bidder     BIGINT,
  price      BIGINT,
  channel    VARCHAR,
  channel_id VARCHAR
) WITH ('connector' = 'blackhole');

-- Flink's REGEXP_EXTRACT(url, pattern, 2) is DataFusion's
-- regexp_match(url, pattern)[2] (NULL when the URL does not match).
INSERT INTO nexmark_q21
SELECT
    auction, bidder, price, channel,
    CASE
        WHEN lower(channel) = 'apple' THEN '0'
        WHEN lower(channel) = 'google' THEN '1'
        WHEN lower(channel) = 'facebook' THEN '2'
        WHEN lower(channel) = 'baidu' THEN '3'
        ELSE regexp_match(url, '(&|^)channel_id=([^&]*)')[2]
        END
    AS channel_id FROM bid
    WHERE regexp_match(url, '(&|^)channel_id=([^&]*)')[2] IS NOT NULL OR
          lower(channel) IN ('apple', 'google', 'facebook', 'baidu');
