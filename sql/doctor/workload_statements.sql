-- The statements of this database taking the most time (pg_stat_statements),
-- for `tally doctor --workload`; $1: how many. SELECT, WITH, UPDATE and
-- DELETE that read a table (an INSERT ... VALUES, or a SELECT without FROM,
-- has nothing an index serves). Left out: tally's own bookkeeping (tally.*),
-- anything naming a pg_ relation or function (catalog and statistics reads,
-- tally's and other tools'), information_schema, and hypopg. One row per
-- text (summed over roles).
SELECT s.query, sum(s.calls)::bigint AS calls,
       (sum(s.total_exec_time) / greatest(sum(s.calls), 1))::float8 AS mean_ms,
       sum(s.total_exec_time)::float8 AS total_ms
FROM pg_stat_statements AS s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.query ~* '^\s*(select|with|update|delete)\M'
  AND (s.query ~* '\mfrom\M' OR s.query ~* '^\s*update\M')
  AND s.query !~* '(\mpg_|hypopg|\mtally\.|information_schema)'
GROUP BY s.query
ORDER BY sum(s.total_exec_time) DESC
LIMIT $1
