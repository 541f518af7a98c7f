-- Views, a window TVF over a view, and Flink nexmark's events table.
-- parallelism: 2
CREATE VIEW big (key, amount, t) AS SELECT k, v, ts FROM a WHERE v > 20;
INSERT INTO kwv SELECT key, window_start, sum(amount) FROM TABLE(TUMBLE(TABLE big, DESCRIPTOR(t), INTERVAL '10' SECOND)) GROUP BY key, window_start, window_end;
INSERT INTO kwv SELECT key, window_start, count(*) FROM TABLE(TUMBLE(DATA => TABLE big, TIMECOL => DESCRIPTOR(t), SIZE => INTERVAL '10' SECOND)) GROUP BY key, window_start, window_end;
CREATE TABLE events (
  event_type INT,
  bid ROW<auction BIGINT, price BIGINT, `dateTime` TIMESTAMP(3)>,
  `dateTime` AS bid.`dateTime`,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'nexmark', 'events.num' = '1000', 'first-event-time' = '2026-01-01 00:00:00');
CREATE VIEW bid AS SELECT bid.auction, bid.price, `dateTime` FROM events WHERE event_type = 2;
INSERT INTO kwv SELECT auction, window_start, max(price) FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) GROUP BY auction, window_start, window_end;
