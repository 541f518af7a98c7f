-- Event-time temporal joins the planner refuses, each with its message.
CREATE TABLE rates (k BIGINT, rate BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE unversioned (k BIGINT, rate BIGINT, ts TIMESTAMP(3), PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
-- fail
INSERT INTO kv SELECT a.k, b.v FROM a JOIN b FOR SYSTEM_TIME AS OF a.ts ON a.k = b.k;
-- fail
INSERT INTO kv SELECT a.k, u.rate FROM a JOIN unversioned FOR SYSTEM_TIME AS OF a.ts AS u ON a.k = u.k;
-- fail
INSERT INTO kv SELECT a.k, r.rate FROM a JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.v = r.rate;
-- fail
INSERT INTO kv SELECT a.k, r.rate FROM a JOIN rates FOR SYSTEM_TIME AS OF a.v AS r ON a.k = r.k;
-- fail
INSERT INTO kv SELECT a.k, r.rate FROM a RIGHT JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.k = r.k;
-- fail
INSERT INTO kv SELECT a.k, r.rate FROM a FULL JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.k = r.k;
-- fail
INSERT INTO kv SELECT a.k, r.rate FROM a LEFT JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.k = r.k AND a.v < r.rate;
-- fail
INSERT INTO kv SELECT r.k, r.rate FROM rates FOR SYSTEM_TIME AS OF ts AS r;
