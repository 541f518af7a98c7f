-- Flink's documentation: docs/content/docs/dev/table/sql/queries/set-ops.md
-- EXCEPT ALL.
-- The page's input as a CSV file (or its VALUES), its query as written, into a print sink.

create view t1(s) as values ('c'), ('a'), ('b'), ('b'), ('c');
create view t2(s) as values ('d'), ('e'), ('a'), ('b'), ('b');
CREATE TABLE Result (
  s STRING
) WITH ('connector' = 'print');

INSERT INTO Result
(SELECT s FROM t1) EXCEPT ALL (SELECT s FROM t2);
