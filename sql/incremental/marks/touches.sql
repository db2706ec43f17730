-- A written touch dirties the conversions of its window: the days from the
-- touch's day to the end of the window of the day's latest touch.
INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day)
SELECT {{aggregate}}, 'touch_window', d, ({{window_end(last_touch)}} AT TIME ZONE {{tz}})::date
FROM (SELECT (r.occurred_at AT TIME ZONE {{tz}})::date AS d, max(r.occurred_at) AS last_touch FROM {{rows}} AS r
      WHERE r.user_id IS NOT NULL AND {{is_touch(r)}} GROUP BY 1) AS dirty;
