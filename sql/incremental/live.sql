-- reporting.<name>_live (SPEC §4.3): what a refresh of an incremental
-- aggregate at this instant would write, at the reader's snapshot: the
-- stored rows of the days no mark waits for, and the rows of the dirty
-- days recomputed by {{rows}}(days) (sql/incremental/live_functions.sql).
-- {{days}}() is NULL while a TRUNCATE's `all` mark waits: `<> ALL (NULL)`
-- keeps no stored row, and every row is recomputed.
-- {{table}}: the stored table; {{period}}: its day column.
-- The days are read once per query (a CTE used twice is computed once).
WITH live AS (SELECT {{days}}() AS dirty)
SELECT stored.* FROM live, {{table}} AS stored
WHERE stored.{{period}} <> ALL (live.dirty)
UNION ALL
SELECT fresh.* FROM live, {{rows}}(live.dirty) AS fresh
