-- The tables every case and refusal reads (run before each file, not pinned).
CREATE TABLE a (k BIGINT, v BIGINT, s VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE b (k BIGINT, v BIGINT, s VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE nowm (k BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE kv (k BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE kwv (k BIGINT, w TIMESTAMP(3), n BIGINT) WITH ('connector' = 'blackhole');
CREATE TABLE changes (k BIGINT, n BIGINT) WITH ('connector' = 'print');
CREATE TABLE appendonly (k BIGINT, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/weir-plans-never-written', 'format' = 'json');
CREATE TABLE flags (k BIGINT, flag BOOLEAN) WITH ('connector' = 'blackhole');
