-- Flink's documentation: docs/content/docs/sql/reference/queries/joins.md
-- Event Time Temporal Join.
-- The page shows the result (order_time as 12:00:00 and 12:06:00) but not the input rows: these are chosen to give it
-- (a Debezium/Kafka versioned table in the page; update_time is a plain column of the file here, not Kafka metadata).
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.

CREATE TABLE orders (
    order_id    STRING,
    price       DECIMAL(32,2),
    currency    STRING,
    order_time  TIMESTAMP(3),
    WATERMARK FOR order_time AS order_time - INTERVAL '15' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/orders.csv',
  'format' = 'csv',
  'scan.watermark.emit.strategy' = 'on-event'
);
CREATE TABLE currency_rates (
    currency STRING,
    conversion_rate DECIMAL(32, 2),
    update_time TIMESTAMP(3),
    WATERMARK FOR update_time AS update_time - INTERVAL '15' SECOND,
    PRIMARY KEY(currency) NOT ENFORCED
) WITH (
  'connector' = 'filesystem',
  'path' = '${DATA}/currency_rates.csv',
  'format' = 'csv',
  'scan.watermark.emit.strategy' = 'on-event'
);
CREATE TABLE Result (
  order_id STRING,
  price DECIMAL(32, 2),
  currency STRING,
  conversion_rate DECIMAL(32, 2),
  order_time TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO Result
SELECT 
     order_id,
     price,
     orders.currency,
     conversion_rate,
     order_time
FROM orders
LEFT JOIN currency_rates FOR SYSTEM_TIME AS OF orders.order_time
ON orders.currency = currency_rates.currency;
