-- Window aggregations.
-- parallelism: 1 4
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO kwv SELECT k, window_end, sum(v) FROM TABLE(HOP(TABLE a, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) WHERE v > 3 GROUP BY k, window_start, window_end;
INSERT INTO kwv SELECT k, window_start, max(v) FROM TABLE(CUMULATE(TABLE a, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(SESSION(TABLE a PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO kwv SELECT 0, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end ALLOWED LATENESS INTERVAL '5' SECOND LATE DATA INTO late_a;
INSERT INTO kwv SELECT k, TUMBLE_START(ts, INTERVAL '1' MINUTE), count(*) FROM a GROUP BY k, TUMBLE(ts, INTERVAL '1' MINUTE);
INSERT INTO kv SELECT k, max(n) FROM (SELECT k, window_start, window_end, count(*) AS n FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end) GROUP BY k, window_start, window_end;
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, ROLLUP (k);
INSERT INTO kwv SELECT k, window_start, 1 FROM TABLE(SESSION(TABLE a PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND));
