-- Marks written by a rollup's refresh for a rollup that reads it
-- (src/aggregates/hierarchy.rs): $1 the dependent's name; $2 whether
-- everything changed ('all'); else $3 and $4, the first and last days of
-- each run of rewritten days ('days').
INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day)
SELECT $1, 'all', NULL, NULL WHERE $2
UNION ALL
SELECT $1, 'days', r.first_day, r.last_day
FROM unnest($3::date[], $4::date[]) AS r(first_day, last_day)
WHERE NOT $2
