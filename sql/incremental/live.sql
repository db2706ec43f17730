-- reporting.<name>_live (SPEC §4.3): what a refresh of an incremental
-- aggregate at this instant would write, at the reader's snapshot: the
-- stored rows no mark waits for, and the rows of the dirty days recomputed
-- by {{rows}} (sql/incremental/live_functions.sql).
-- {{days}}() gives whole days, recomputed whole (NULL while a TRUNCATE's
-- `all` mark waits: `<> ALL (NULL)` keeps no stored row, and every row is
-- recomputed), and keyed days, of which only the rows whose key value is in
-- keys are recomputed ({{keyed_rows}}: that condition on a stored row, the
-- same one the recomputation applies to the source rows, so each row comes
-- from exactly one side; `false` without a live key).
-- {{table}}: the stored table; {{period}}: its day column.
-- The days are read once per query (a CTE used twice is computed once).
WITH live AS (SELECT * FROM {{days}}())
SELECT stored.* FROM live, {{table}} AS stored
WHERE stored.{{period}} <> ALL (live.whole) AND NOT coalesce({{keyed_rows}}, false)
UNION ALL
SELECT fresh.* FROM live, {{rows}}(live.whole, live.keyed, live.keys) AS fresh
