-- Lateral UNNEST of an ARRAY: stateless operators over the left rows (no join, no exchange), whose rowtime
-- passes through to a window TVF over a view that unnests.
-- parallelism: 2
CREATE TABLE orders (id BIGINT, tags ARRAY<INT>, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'filesystem', 'path' = '/tmp/weir-plans-never-read', 'format' = 'json');
INSERT INTO kv SELECT o.id, t.tag FROM orders o CROSS JOIN UNNEST(o.tags) AS t(tag);
INSERT INTO kv SELECT o.id, t.tag FROM orders AS o, UNNEST(o.tags) AS t(tag) WHERE t.tag > o.id;
INSERT INTO kv SELECT o.id, t.tag FROM orders o LEFT JOIN UNNEST(o.tags) AS t(tag) ON TRUE;
CREATE VIEW tagged AS SELECT o.id, t.tag, o.ts FROM orders o CROSS JOIN UNNEST(o.tags) AS t(tag);
INSERT INTO kwv SELECT tag, window_start, count(*) FROM TABLE(TUMBLE(TABLE tagged, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY tag, window_start, window_end;
