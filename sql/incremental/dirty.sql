-- The days a set of marks dirties ({{marks}}: a relation of kind,
-- first_day, last_day, lead_id, via, keys and usable_keys, whether keys hold
-- values and no NULL), for the claim of an incremental refresh and the live
-- views (split.sql). {{tz}}: the reporting timezone literal.
--   days:         first_day .. last_day
--   touch_window: the days of the conversions between first_day and
--                 last_day (the triggers computed the window's end from
--                 sql/rules/touch_window.sql); with usable keys (a small
--                 statement's touches), only those of the leads whose
--                 user_id is in keys
--   lead:         the days of lead_id's conversions (marks of an earlier
--                 release, before a lead's change became a join mark)
--   join:         {{joined}}: the days of the fact rows holding the keys
--                 (sql/incremental/joined_days.sql, one per joined column)
-- Both ends of a range are kept within the years 1 to 9999, so that no date
-- becomes a timestamp PostgreSQL cannot hold; days outside them are not
-- rewritten.
SELECT d::date AS day
    FROM {{marks}},
         generate_series(least(greatest({{marks}}.first_day, date '0001-01-01'), date '9999-12-31'),
                         greatest(least({{marks}}.last_day, date '9999-12-31'), date '0001-01-01'),
                         interval '1 day') AS d
    WHERE {{marks}}.kind = 'days' AND {{marks}}.first_day <= date '9999-12-31'
      AND {{marks}}.last_day >= date '0001-01-01'
    UNION
    SELECT (c.occurred_at AT TIME ZONE {{tz}})::date
    FROM {{marks}} JOIN marketing.conversions AS c
      ON c.occurred_at >= (least({{marks}}.first_day, date '9999-12-31')::timestamp AT TIME ZONE {{tz}})
     AND c.occurred_at < ((least({{marks}}.last_day, date '9999-12-30') + 1)::timestamp AT TIME ZONE {{tz}})
    WHERE {{marks}}.kind = 'touch_window' AND NOT {{marks}}.usable_keys
    UNION
    SELECT (c.occurred_at AT TIME ZONE {{tz}})::date
    FROM {{marks}} CROSS JOIN LATERAL unnest({{marks}}.keys) AS u(user_id)
    JOIN marketing.leads AS l ON l.user_id = u.user_id
    JOIN marketing.conversions AS c
      ON c.lead_id = l.id
     AND c.occurred_at >= (least({{marks}}.first_day, date '9999-12-31')::timestamp AT TIME ZONE {{tz}})
     AND c.occurred_at < ((least({{marks}}.last_day, date '9999-12-30') + 1)::timestamp AT TIME ZONE {{tz}})
    WHERE {{marks}}.kind = 'touch_window' AND {{marks}}.usable_keys
    UNION
    SELECT (c.occurred_at AT TIME ZONE {{tz}})::date
    FROM {{marks}} JOIN marketing.conversions AS c ON c.lead_id = {{marks}}.lead_id
    WHERE {{marks}}.kind = 'lead'
{{joined}}
