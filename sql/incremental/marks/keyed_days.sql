-- A small statement dirties the days of its rows, each only for the live
-- key values of its rows ({{day}}: the day of row r, {{key}}: its key
-- value). A NULL key value leaves the day's keys NULL: the whole day.
INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day, keys)
SELECT {{aggregate}}, 'days', dirty.d, dirty.d,
       CASE WHEN bool_and(dirty.key IS NOT NULL) THEN array_agg(DISTINCT dirty.key) END
FROM (SELECT {{day}} AS d, {{key}} AS key FROM {{rows}} AS r) AS dirty
GROUP BY dirty.d;
