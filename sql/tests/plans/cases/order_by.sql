-- ORDER BY on a stream: the rowtime ascending first, one subtask.
-- parallelism: 1 4
INSERT INTO kwv SELECT k, ts, v FROM a ORDER BY ts, k DESC;
