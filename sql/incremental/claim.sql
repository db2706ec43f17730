-- The claim of an incremental refresh: deletes the aggregate's committed
-- marks ($1: the aggregate's name) and returns how many there were, whether
-- one dirtied everything (a TRUNCATE), and the days they dirty, sorted.
-- {{tz}}: the reporting timezone literal.
--   days:         first_day .. last_day
--   touch_window: the days of the conversions between first_day and
--                 last_day (the triggers computed the window's end from
--                 sql/rules/touch_window.sql)
--   lead:         the days of lead_id's conversions
-- Both ends of a range are kept within the years 1 to 9999, so that no date
-- becomes a timestamp PostgreSQL cannot hold; days outside them are not
-- rewritten.
WITH claimed AS (
    DELETE FROM tally.invalidations WHERE aggregate = $1 RETURNING kind, first_day, last_day, lead_id),
dirty AS (
    SELECT d::date AS day
    FROM claimed,
         generate_series(least(greatest(claimed.first_day, date '0001-01-01'), date '9999-12-31'),
                         greatest(least(claimed.last_day, date '9999-12-31'), date '0001-01-01'),
                         interval '1 day') AS d
    WHERE claimed.kind = 'days' AND claimed.first_day <= date '9999-12-31'
      AND claimed.last_day >= date '0001-01-01'
    UNION
    SELECT (c.occurred_at AT TIME ZONE {{tz}})::date
    FROM claimed JOIN marketing.conversions AS c
      ON c.occurred_at >= (least(claimed.first_day, date '9999-12-31')::timestamp AT TIME ZONE {{tz}})
     AND c.occurred_at < ((least(claimed.last_day, date '9999-12-30') + 1)::timestamp AT TIME ZONE {{tz}})
    WHERE claimed.kind = 'touch_window'
    UNION
    SELECT (c.occurred_at AT TIME ZONE {{tz}})::date
    FROM claimed JOIN marketing.conversions AS c ON c.lead_id = claimed.lead_id
    WHERE claimed.kind = 'lead')
SELECT (SELECT count(*) FROM claimed),
       coalesce((SELECT bool_or(kind = 'all') FROM claimed), false),
       array(SELECT day FROM dirty WHERE day BETWEEN date '0001-01-01' AND date '9999-12-31' ORDER BY day)
