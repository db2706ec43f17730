-- The claim of an incremental refresh: deletes the aggregate's committed
-- marks ($1: the aggregate's name) and returns how many there were, whether
-- one dirtied everything (a TRUNCATE), the days to rewrite whole, and the
-- keyed days with their key values (sql/incremental/split.sql, here
-- {{split}} over claimed).
WITH claimed AS (
    DELETE FROM tally.invalidations WHERE aggregate = $1 RETURNING kind, first_day, last_day, lead_id, via, keys),
{{split}}
SELECT (SELECT count(*) FROM claimed), whole IS NULL, coalesce(whole, '{}'), keyed, keys FROM split
