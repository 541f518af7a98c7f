-- Event-time temporal joins against a versioned table (PRIMARY KEY and WATERMARK).
-- parallelism: 1 4
CREATE TABLE rates (k BIGINT, rate BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND, PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE rated (k BIGINT, v BIGINT, rate BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'blackhole');
INSERT INTO rated SELECT a.k, a.v, r.rate, a.ts FROM a JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.k = r.k;
INSERT INTO rated SELECT a.k, a.v, rates.rate, a.ts FROM a LEFT JOIN rates FOR SYSTEM_TIME AS OF a.ts ON rates.k = a.k WHERE a.v > 2;
INSERT INTO changes SELECT r.k, count(*) FROM a JOIN rates FOR SYSTEM_TIME AS OF a.ts AS r ON a.k = r.k GROUP BY r.k;
