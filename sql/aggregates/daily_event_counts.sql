-- reporting.daily_event_counts: one row per day and event name (SPEC §4).
-- <tz> is replaced by the configured reporting_timezone as a quoted literal;
-- <scope> by `true` or the occurred_at ranges of the days being recomputed;
-- <visitors_hll> by the sketch of the visitors' user_ids (postgresql-hll,
-- log2m 14) when the server has the extension, or nothing (SPEC §4.1).
-- Grouping and the distinct count compare text byte by byte (COLLATE "C",
-- the same groups; see daily_campaign_metrics.sql); `event` keeps the
-- default collation.
SELECT
    (e.occurred_at AT TIME ZONE {{tz}})::date AS day,
    (e.event COLLATE "C") COLLATE "default"   AS event,
    count(*)                                  AS events,
    count(DISTINCT e.user_id COLLATE "C")     AS visitors{{visitors_hll}}
FROM marketing.events AS e
WHERE {{scope}}
GROUP BY 1, e.event COLLATE "C"
