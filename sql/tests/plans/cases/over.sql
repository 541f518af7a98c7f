-- OVER windows: rows leave in time order once the watermark passes them.
-- parallelism: 1 4
INSERT INTO kv SELECT k, sum(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM a;
INSERT INTO kv SELECT k, lag(v) OVER w + max(v) OVER w FROM a WINDOW w AS (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW);
INSERT INTO kv SELECT k, count(*) OVER (ORDER BY ts) FROM a;
