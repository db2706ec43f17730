INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day)
VALUES ({{aggregate}}, 'touch_window', (lower AT TIME ZONE {{tz}})::date, ({{window_end(upper)}} AT TIME ZONE {{tz}})::date);
