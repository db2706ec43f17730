-- reporting.daily_campaign_metrics: one row per day and campaign (SPEC §4).
-- <tz> is replaced by the configured reporting_timezone as a quoted literal;
-- <scope> by `true`, or (incremental mode) by the occurred_at ranges of the
-- days being recomputed.
-- <visitors_hll> by the sketch of the same user_ids (postgresql-hll, log2m
-- 14) when the server has the extension, or nothing (SPEC §4.1).
-- A missing or empty UTM value groups under '(none)'.
-- revenue counts properties.revenue of purchase events only when it is a JSON
-- number; any other value counts as 0 and never fails the refresh.
-- Grouping and the distinct counts compare text byte by byte (COLLATE "C"):
-- the same groups as the database's collation, which is deterministic, at a
-- fraction of the cost of locale comparisons; the output columns keep the
-- default collation.
SELECT
    (e.occurred_at AT TIME ZONE {{tz}})::date                  AS day,
    k.utm_source COLLATE "default"                             AS utm_source,
    k.utm_medium COLLATE "default"                             AS utm_medium,
    k.utm_campaign COLLATE "default"                           AS utm_campaign,
    count(*)                                                   AS events,
    count(*) FILTER (WHERE e.event = 'page_view')              AS page_views,
    count(DISTINCT e.user_id COLLATE "C")                     AS visitors{{visitors_hll}},
    count(DISTINCT e.session_id COLLATE "C")                  AS sessions,
    count(*) FILTER (WHERE e.event = 'signup')                 AS signups,
    count(*) FILTER (WHERE e.event = 'purchase')               AS purchases,
    coalesce(sum(CASE
        WHEN e.event = 'purchase' AND jsonb_typeof(e.properties -> 'revenue') = 'number'
        THEN (e.properties ->> 'revenue')::numeric
    END), 0)                                                   AS revenue
FROM marketing.events AS e
CROSS JOIN LATERAL (SELECT
    coalesce(nullif(e.utm_source, ''), '(none)') COLLATE "C"   AS utm_source,
    coalesce(nullif(e.utm_medium, ''), '(none)') COLLATE "C"   AS utm_medium,
    coalesce(nullif(e.utm_campaign, ''), '(none)') COLLATE "C" AS utm_campaign) AS k
WHERE {{scope}}
GROUP BY 1, k.utm_source, k.utm_medium, k.utm_campaign
