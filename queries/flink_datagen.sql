-- Flink's datagen example DDL, unchanged but for a faster rate: a sequence,
-- random numbers and strings, and a processing-time rowtime.
CREATE TABLE datagen (
 f_sequence INT,
 f_random INT,
 f_random_str STRING,
 ts AS localtimestamp,
 WATERMARK FOR ts AS ts
) WITH (
 'connector' = 'datagen',
 'rows-per-second'='5000',
 'fields.f_sequence.kind'='sequence',
 'fields.f_sequence.start'='1',
 'fields.f_sequence.end'='1000',
 'fields.f_random.min'='1',
 'fields.f_random.max'='1000',
 'fields.f_random_str.length'='10'
);

CREATE TABLE summary (rows_seen BIGINT, smallest INT, largest INT, longest_str INT)
  WITH ('connector' = 'print');

INSERT INTO summary
SELECT count(*), min(f_random), max(f_random), max(character_length(f_random_str))
FROM TABLE(TUMBLE(TABLE datagen, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY window_start, window_end;
