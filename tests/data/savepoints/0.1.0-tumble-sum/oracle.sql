-- columns: window_start,k,c,s
SELECT ws, k, count(*) AS c, sum(v) AS s FROM t GROUP BY ws, k
