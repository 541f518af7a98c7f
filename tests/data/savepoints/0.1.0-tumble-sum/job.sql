SET 'execution.checkpointing.interval' = '100 ms';

CREATE TABLE t (k VARCHAR, v BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('connector' = 'filesystem', 'path' = '$DIR/in', 'format' = 'json', 'scan.watermark.emit.strategy' = 'on-event');
CREATE TABLE out (window_start TIMESTAMP(3), k VARCHAR, c BIGINT, s BIGINT) WITH ('connector' = 'filesystem', 'path' = '$DIR/out', 'format' = 'json');
INSERT INTO out SELECT window_start, k, count(*) AS c, sum(v) AS s FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k;
