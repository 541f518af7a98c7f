-- Nexmark Query 4: average price for a category. The winning (highest)
-- bid of every auction, among its bids while it was open, averaged per
-- category. Both aggregations have no window: their results change as bids
-- arrive, and the second takes back an auction's earlier maximum when it
-- rises (a changelog, as in Flink).

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

CREATE TABLE nexmark_q4 (
  id    BIGINT,
  final BIGINT
) WITH ('connector' = 'blackhole');

INSERT INTO nexmark_q4
SELECT Q.category, AVG(Q.final)
FROM (
  SELECT MAX(B.price) AS final, A.category
  FROM auction A, bid B
  WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
  GROUP BY A.id, A.category
) Q
GROUP BY Q.category;
