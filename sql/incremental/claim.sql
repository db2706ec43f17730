-- The claim of an incremental refresh: deletes the aggregate's committed
-- marks ($1: the aggregate's name) and returns how many there were, whether
-- one dirtied everything (a TRUNCATE), and the days they dirty, sorted.
-- {{dirty}}: sql/incremental/dirty.sql over the claimed marks.
WITH claimed AS (
    DELETE FROM tally.invalidations WHERE aggregate = $1 RETURNING kind, first_day, last_day, lead_id),
dirty AS (
{{dirty}})
SELECT (SELECT count(*) FROM claimed),
       coalesce((SELECT bool_or(kind = 'all') FROM claimed), false),
       array(SELECT day FROM dirty WHERE day BETWEEN date '0001-01-01' AND date '9999-12-31' ORDER BY day)
