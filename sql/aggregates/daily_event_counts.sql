-- reporting.daily_event_counts: one row per day and event name (SPEC §4).
-- <tz> is replaced by the configured reporting_timezone as a quoted literal;
-- <scope> by `true` or the occurred_at ranges of the days being recomputed.
SELECT
    (e.occurred_at AT TIME ZONE {{tz}})::date AS day,
    e.event                                   AS event,
    count(*)                                  AS events,
    count(DISTINCT e.user_id)                 AS visitors
FROM marketing.events AS e
WHERE {{scope}}
GROUP BY 1, 2
