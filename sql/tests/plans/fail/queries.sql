-- What the stream planner refuses, each with its message.
CREATE VIEW shifted AS SELECT k, ts + INTERVAL '1' SECOND AS t2 FROM a;
-- fail
INSERT INTO kv SELECT k, v FROM a ORDER BY v;
-- fail
INSERT INTO kv SELECT k, sum(v) OVER (PARTITION BY k ORDER BY v) FROM a;
-- fail
INSERT INTO kv SELECT k, v FROM a WHERE k IN (SELECT k FROM b);
-- fail
INSERT INTO kv SELECT k, v FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = a.k);
-- fail
INSERT INTO kv SELECT k FROM a;
-- fail
INSERT INTO flags SELECT k, ts FROM a;
-- fail
INSERT INTO appendonly SELECT k, count(*) FROM a GROUP BY k;
-- fail
INSERT INTO kv SELECT k, median(n) FROM (SELECT k, count(*) AS n FROM a GROUP BY k) GROUP BY k;
-- fail
INSERT INTO appendonly SELECT a.k, b.v FROM a LEFT JOIN b ON a.k = b.k;
-- fail
INSERT INTO kv SELECT a.k, b.v FROM a LEFT JOIN b ON b.ts BETWEEN a.ts AND a.ts + INTERVAL '1' SECOND;
-- fail
INSERT INTO kv SELECT a.k, b.v FROM a JOIN b ON a.k = b.k AND b.ts BETWEEN a.ts + INTERVAL '2' SECOND AND a.ts + INTERVAL '1' SECOND;
-- fail
INSERT INTO kv SELECT k, v FROM a EMIT EARLY EVERY INTERVAL '1' SECOND;
-- fail
INSERT INTO kv SELECT k, v FROM a ALLOWED LATENESS INTERVAL '1' SECOND;
-- fail
INSERT INTO kv SELECT k, string_agg(s, ',' ORDER BY v) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kv SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS rn FROM a);
-- fail
INSERT INTO kv SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k) AS rn FROM a) WHERE rn = 1;
-- fail
INSERT INTO appendonly SELECT k, v FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v) AS rn FROM a) WHERE rn <= 2;
