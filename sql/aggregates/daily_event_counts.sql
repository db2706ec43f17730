-- reporting.daily_event_counts: one row per day and event name (SPEC §4).
-- <tz> is replaced by the configured reporting_timezone as a quoted literal;
-- <scope> by `true` or the occurred_at ranges of the days being recomputed;
-- <visitors_hll> by the sketch of the visitors' user_ids (postgresql-hll,
-- log2m 14) when the server has the extension, or nothing (SPEC §4.1).
SELECT
    (e.occurred_at AT TIME ZONE {{tz}})::date AS day,
    e.event                                   AS event,
    count(*)                                  AS events,
    count(DISTINCT e.user_id)                 AS visitors{{visitors_hll}}
FROM marketing.events AS e
WHERE {{scope}}
GROUP BY 1, 2
