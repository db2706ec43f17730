-- A small statement's touches dirty the conversions of their users only:
-- per day of touches, the days from it to the end of the window of its
-- latest touch, for the leads whose user_id is one of the touches' (keys).
INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day, keys)
SELECT {{aggregate}}, 'touch_window', d, ({{window_end(last_touch)}} AT TIME ZONE {{tz}})::date, users
FROM (SELECT (r.occurred_at AT TIME ZONE {{tz}})::date AS d, max(r.occurred_at) AS last_touch,
             array_agg(DISTINCT r.user_id) AS users
      FROM {{rows}} AS r
      WHERE r.user_id IS NOT NULL AND {{is_touch(r)}} GROUP BY 1) AS dirty;
