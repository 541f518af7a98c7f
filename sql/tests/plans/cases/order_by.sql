-- ORDER BY on a stream: the rowtime ascending first, one subtask.
-- parallelism: 1 4
INSERT INTO kwv SELECT k, ts, v FROM a ORDER BY ts, k DESC;
INSERT INTO kv SELECT k, v FROM a LIMIT 3;
INSERT INTO kv SELECT k, v FROM a ORDER BY ts LIMIT 3;
