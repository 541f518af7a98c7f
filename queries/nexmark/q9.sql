-- Nexmark Query 9: winning bids. Each auction's highest bid among those
-- made while it was open (the earlier one first among equal prices): a
-- regular join of auctions and bids, then Flink's Top-1 per auction, an
-- updating result as higher bids come.

-- The Nexmark auction and bid streams (Flink nexmark's views), 100 000
-- events here; 'weir bench queries/nexmark --events N' sets
-- 'number-of-events' to N.
CREATE TABLE auction (
  id          BIGINT,
  itemName    VARCHAR,
  description VARCHAR,
  initialBid  BIGINT,
  reserve     BIGINT,
  dateTime    TIMESTAMP(3),
  expires     TIMESTAMP(3),
  seller      BIGINT,
  category    BIGINT,
  extra       VARCHAR,
  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
  'connector' = 'nexmark',
  'nexmark.table' = 'auction',
  'events-per-second' = '10000000',
  'number-of-events' = '100000',
  'rate-limited' = 'false',
  'first-event-time' = '2026-01-01 00:00:00'
);

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

CREATE TABLE nexmark_q9 (
  id          BIGINT,
  itemName    VARCHAR,
  description VARCHAR,
  initialBid  BIGINT,
  reserve     BIGINT,
  dateTime    TIMESTAMP(3),
  expires     TIMESTAMP(3),
  seller      BIGINT,
  category    BIGINT,
  extra       VARCHAR,
  auction     BIGINT,
  bidder      BIGINT,
  price       BIGINT,
  bid_dateTime TIMESTAMP(3),
  bid_extra   VARCHAR
) WITH ('connector' = 'blackhole');

INSERT INTO nexmark_q9
SELECT
    id, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra,
    auction, bidder, price, bid_dateTime, bid_extra
FROM (
   SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime, B.extra AS bid_extra,
     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
   FROM auction A, bid B
   WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
)
WHERE rownum <= 1;
