-- Window TVFs the planner refuses, each with its message.
CREATE VIEW shifted AS SELECT k, ts + INTERVAL '1' SECOND AS t2 FROM a;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start;
-- fail
INSERT INTO kwv SELECT k, window_end, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start + INTERVAL '1' SECOND, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, max(window_end) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE nowm, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(v), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts))) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(SESSION(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(SESSION(TABLE a PARTITION BY k, DESCRIPTOR(ts), INTERVAL '0' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(CUMULATE(TABLE a, DESCRIPTOR(ts), INTERVAL '7' SECOND, INTERVAL '1' MINUTE)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(HOP(TABLE a, DESCRIPTOR(ts), INTERVAL '1' MONTH, INTERVAL '2' MONTH)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(DATA => TABLE a, TIMECOL => DESCRIPTOR(ts), WIDTH => INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE shifted, DESCRIPTOR(t2), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(FOO(TABLE a, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end;
-- fail
SELECT k, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY GROUPING SETS ((window_start, window_end, k), (k));
