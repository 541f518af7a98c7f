-- Updating results and set operations.
-- parallelism: 1 4
INSERT INTO changes SELECT k, count(*) FROM a GROUP BY k;
INSERT INTO changes SELECT count(*), sum(v) FROM a;
INSERT INTO changes SELECT DISTINCT k, v FROM a;
INSERT INTO changes SELECT k, sum(n) FROM (SELECT k, count(*) AS n FROM a GROUP BY k) GROUP BY k;
INSERT INTO kv SELECT k, v FROM a UNION ALL SELECT k, v FROM b;
INSERT INTO changes SELECT k, v FROM a UNION SELECT k, v FROM b;
INSERT INTO changes SELECT k, count(*) FROM (VALUES (1, 2), (1, 3), (2, 5)) AS t(k, v) GROUP BY k;
INSERT INTO changes SELECT k, count(*) FROM a GROUP BY ROLLUP (k, v);
INSERT INTO changes SELECT k, v FROM a EXCEPT SELECT k, v FROM b;
INSERT INTO changes SELECT k, v FROM a INTERSECT ALL SELECT k, v FROM b;
INSERT INTO kv SELECT 1, 2;
