-- Window TVFs the planner refuses, each with its message.
CREATE TABLE a (k BIGINT, v BIGINT, s VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE b (k BIGINT, v BIGINT, s VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE nowm (k BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE kv (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE kwv (k BIGINT, w TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE appendonly (k BIGINT, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/weir-plans-never-written', 'format' = 'json');
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
INSERT INTO kwv SELECT k, window_start, 1 FROM TABLE(SESSION(TABLE a PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND));
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
