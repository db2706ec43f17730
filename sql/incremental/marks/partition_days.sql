INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day)
VALUES ({{aggregate}}, 'days', (lower AT TIME ZONE {{tz}})::date, ((upper - interval '1 microsecond') AT TIME ZONE {{tz}})::date);
