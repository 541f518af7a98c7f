-- UNNESTs that cannot run on a stream.
CREATE TABLE orders (id BIGINT, tags ARRAY<INT>, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'filesystem', 'path' = '/tmp/weir-plans-never-read', 'format' = 'json');
-- fail
INSERT INTO kv SELECT o.id, t.tag FROM orders o LEFT JOIN UNNEST(o.tags) AS t(tag) ON t.tag > 1;
-- fail
INSERT INTO kv SELECT id, unnest(tags) FROM orders;
-- fail
INSERT INTO kv SELECT o.id, t.tag FROM orders o RIGHT JOIN UNNEST(o.tags) AS t(tag) ON TRUE;
