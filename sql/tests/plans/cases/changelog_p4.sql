-- Updating results and set operations at parallelism 4.
SET 'parallelism.default' = '4';
CREATE TABLE a (k BIGINT, v BIGINT, s VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE b (k BIGINT, v BIGINT, s VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE kv (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE kwv (k BIGINT, w TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE changes (k BIGINT, n BIGINT) WITH ('connector' = 'print');
INSERT INTO changes SELECT k, count(*) FROM a GROUP BY k;
INSERT INTO changes SELECT count(*), sum(v) FROM a;
INSERT INTO changes SELECT DISTINCT k, v FROM a;
INSERT INTO changes SELECT k, sum(n) FROM (SELECT k, count(*) AS n FROM a GROUP BY k) GROUP BY k;
INSERT INTO kv SELECT k, v FROM a UNION ALL SELECT k, v FROM b;
INSERT INTO changes SELECT k, v FROM a UNION SELECT k, v FROM b;
INSERT INTO changes SELECT k, count(*) FROM (VALUES (1, 2), (1, 3), (2, 5)) AS t(k, v) GROUP BY k;
INSERT INTO changes SELECT k, count(*) FROM a GROUP BY ROLLUP (k, v);
