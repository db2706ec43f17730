-- Days waiting in tally.invalidations per aggregate (an upper bound: a touch
-- window counts all its days, a lead change counts one). Days outside the
-- years 1 to 9999 (an 'infinity' in the data) are not rewritten (see
-- claim.sql), so they are not counted either.
-- A shared mark counts for each of its members.
SELECT owner, coalesce(sum(CASE WHEN kind IN ('days', 'touch_window')
           THEN greatest(least(last_day, date '9999-12-31') - greatest(first_day, date '0001-01-01') + 1, 0)
           ELSE 1 END), 0)::bigint
FROM tally.invalidations CROSS JOIN LATERAL unnest(coalesce(members, ARRAY[aggregate])) AS o(owner)
GROUP BY owner
