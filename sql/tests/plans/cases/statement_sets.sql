-- Statement sets: a table the INSERTs read alike is read once, its stage
-- read by each of them; another table keeps its own source.
-- parallelism: 1 4
EXECUTE STATEMENT SET BEGIN
INSERT INTO kv SELECT k, v FROM a WHERE v > 2;
INSERT INTO kwv SELECT k, window_start, count(*) FROM TABLE(TUMBLE(TABLE a, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end;
INSERT INTO kv SELECT k, v FROM b;
END;
