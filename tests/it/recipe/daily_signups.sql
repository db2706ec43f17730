-- reporting.daily_signups (test only): signups per day and source, defined
-- by following docs/aggregates.md ("Adding an aggregate").
SELECT
    (e.occurred_at AT TIME ZONE {{tz}})::date    AS day,
    coalesce(nullif(e.utm_source, ''), '(none)') AS utm_source,
    count(*)                                     AS signups
FROM marketing.events AS e
WHERE e.event = 'signup' AND {{scope}}
GROUP BY 1, 2
