-- Weir quickstart: a bounded generator, ten-second tumbling windows, printed.
-- Run it with: cargo run --release -- run queries/quickstart.sql

CREATE TABLE orders (
  order_id BIGINT,
  channel  BIGINT,
  amount   BIGINT,
  -- one order every 10 ms of event time, from 2026-01-01 00:00:00 UTC
  ts AS TO_TIMESTAMP_LTZ(1767225600000 + order_id * 10, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '1000000',
  'fields.order_id.kind' = 'sequence',
  'fields.order_id.start' = '0',
  'fields.order_id.end' = '99999',
  'fields.channel.kind' = 'sequence',
  'fields.channel.start' = '0',
  'fields.channel.end' = '99999',
  'fields.amount.min' = '1',
  'fields.amount.max' = '100'
);

CREATE TABLE report (
  window_start TIMESTAMP(3),
  window_end   TIMESTAMP(3),
  channel      BIGINT,
  orders       BIGINT,
  revenue      BIGINT,
  biggest      BIGINT
) WITH ('connector' = 'print');

INSERT INTO report
SELECT window_start, window_end, channel % 4, count(*), sum(amount), max(amount)
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel % 4;
