-- reporting.<name>_live (SPEC §4.3): what a refresh of an incremental
-- aggregate at this instant would write, at the reader's snapshot: the
-- stored rows of the days no mark waits for, and the definition recomputed
-- for the days the waiting marks dirty (everything after a TRUNCATE).
-- {{aggregate}}: its name as a literal; {{table}}: the stored table;
-- {{dirty}}: sql/incremental/dirty.sql over live_marks; {{days}}: the
-- definition restricted to those days: an index range from the first to the
-- last dirty day (all time after a TRUNCATE mark), bounds computed once
-- (initplans, so partitions outside are pruned at run time and the planner
-- expects a narrow range: no JIT for a view that mostly reads few rows).
WITH live_marks AS (
    SELECT kind, first_day, last_day, lead_id FROM tally.invalidations WHERE aggregate = {{aggregate}}),
live_dirty AS (
{{dirty}}),
live_all AS (
    SELECT EXISTS (SELECT 1 FROM live_marks WHERE kind = 'all') AS yes)
SELECT stored.* FROM {{table}} AS stored
WHERE NOT (SELECT yes FROM live_all) AND stored.day NOT IN (SELECT day FROM live_dirty)
UNION ALL
SELECT * FROM (
{{days}}
) AS fresh
