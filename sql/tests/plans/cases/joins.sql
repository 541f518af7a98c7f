-- Joins.
-- parallelism: 1 4
INSERT INTO kv SELECT a.k, b.v FROM a JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts - INTERVAL '1' SECOND AND a.ts + INTERVAL '1' SECOND;
INSERT INTO kv SELECT a.k, b.v FROM a JOIN b ON a.k = b.k WHERE a.v > 2 AND b.s = 'x';
INSERT INTO kv SELECT a.k, b.v FROM a, b WHERE a.v < b.v AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND;
INSERT INTO kv SELECT l.k, l.n + r.n FROM (SELECT k, window_start, window_end, count(*) AS n FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end) l JOIN (SELECT k, window_start, window_end, count(*) AS n FROM TABLE(TUMBLE(TABLE b, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end) r ON l.k = r.k AND l.window_start = r.window_start AND l.window_end = r.window_end;
INSERT INTO changes SELECT a.k, n FROM a JOIN (SELECT k, count(*) AS n FROM b GROUP BY k) c ON a.k = c.k;
INSERT INTO changes SELECT a.k, b.v FROM a LEFT JOIN b ON a.k = b.k;
INSERT INTO kv SELECT a.k, b.v FROM a FULL JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND;
SET 'table.exec.state.ttl' = '1 h';
INSERT INTO changes SELECT /*+ STATE_TTL('b' = '1 d') */ a.k, count(*) FROM a JOIN b ON a.k = b.k GROUP BY a.k;
