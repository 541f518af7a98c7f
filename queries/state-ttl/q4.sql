-- Nexmark Query 4 under a state TTL: as queries/nexmark/q4.sql, with
-- 'table.exec.state.ttl' set, so that the join's auctions and bids and the
-- aggregations' groups that nothing wrote for 5 s are dropped and the job
-- runs in bounded memory however many events it reads (as a Flink job of
-- q4 needs a state TTL to). An auction is written once, so a bid coming
-- more than 5 s (processing time) after its auction meets nothing, and is
-- counted as a row that met expired state. 'weir bench queries/state-ttl'
-- compares it with queries/nexmark/q4.sql (docs/aggregations.md#state-ttl).
SET 'table.exec.state.ttl' = '5 s';

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
