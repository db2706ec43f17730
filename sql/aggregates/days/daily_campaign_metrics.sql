-- reporting.daily_campaign_metrics for a few days (incremental mode's
-- rewrites and the live view): the same rows as
-- sql/aggregates/daily_campaign_metrics.sql, in two steps planned well for
-- a few days. The events are first grouped per visitor and session (a hash
-- aggregate), and the distinct counts are then taken over those groups, far
-- fewer rows than events to sort: about half the time of the one-step form
-- on one day of 32,000 events. Over all days the one-step form is faster,
-- so builds use it. The counts, the sums and the sketch (adding a user_id
-- twice changes nothing) are those of the events; the differential tests
-- compare both forms. The text keys are grouped and sorted under the "C"
-- collation (byte order): equality is the same under every deterministic
-- collation, so the groups are too, and byte comparisons sort fastest. The
-- rows written take the table's collation.
-- The outer alias is `e` too, so that <visitors_hll> reads e.user_id.
SELECT
    e.day, e.utm_source, e.utm_medium, e.utm_campaign,
    sum(e.events)::bigint                                      AS events,
    sum(e.page_views)::bigint                                  AS page_views,
    count(DISTINCT e.user_id)                                  AS visitors{{visitors_hll}},
    count(DISTINCT e.session_id)                               AS sessions,
    sum(e.signups)::bigint                                     AS signups,
    sum(e.purchases)::bigint                                   AS purchases,
    coalesce(sum(e.revenue), 0)                                AS revenue
FROM (
    SELECT
        (e.occurred_at AT TIME ZONE {{tz}})::date                  AS day,
        coalesce(nullif(e.utm_source, ''), '(none)') COLLATE "C"   AS utm_source,
        coalesce(nullif(e.utm_medium, ''), '(none)') COLLATE "C"   AS utm_medium,
        coalesce(nullif(e.utm_campaign, ''), '(none)') COLLATE "C" AS utm_campaign,
        e.user_id COLLATE "C"                                      AS user_id,
        e.session_id COLLATE "C"                                   AS session_id,
        count(*)                                                   AS events,
        count(*) FILTER (WHERE e.event = 'page_view')              AS page_views,
        count(*) FILTER (WHERE e.event = 'signup')                 AS signups,
        count(*) FILTER (WHERE e.event = 'purchase')               AS purchases,
        sum(CASE
            WHEN e.event = 'purchase' AND jsonb_typeof(e.properties -> 'revenue') = 'number'
            THEN (e.properties ->> 'revenue')::numeric
        END)                                                       AS revenue
    FROM marketing.events AS e
    WHERE {{scope}}
    GROUP BY 1, 2, 3, 4, 5, 6
) AS e
GROUP BY 1, 2, 3, 4
