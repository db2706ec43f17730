-- reporting.daily_attribution: conversions and revenue credited to campaigns
-- by three models, per day of the conversion (SPEC §4).
-- <tz> is the reporting_timezone literal; <lookback_days> the configured
-- attribution_lookback_days (an integer); <scope> `true` or the ranges of
-- conversions.occurred_at of the days being recomputed.
--
-- A touch of a conversion is an event of the lead's user (events.user_id =
-- leads.user_id) with a utm_source, at or before the conversion and less than
-- <lookback_days> days before it: the rule of sql/rules/touch_window.sql,
-- which the invalidation triggers of incremental mode share.
--   first_touch: the lead's own source/campaign (the brief's first-touch query).
--   last_touch:  the latest touch (ties: highest event id); the lead's
--                source/campaign when there is none.
--   linear:      each of the n touches gets 1/n of the conversion and of its
--                revenue; the lead's source/campaign when there is none.
-- Missing or empty values group under '(none)'. `conversions` is numeric so
-- linear credit sums to 1 per conversion (up to numeric rounding).
WITH conversion AS (
    SELECT c.id, c.occurred_at, c.revenue, l.user_id,
           coalesce(nullif(l.source, ''), '(none)')   AS lead_source,
           coalesce(nullif(l.campaign, ''), '(none)') AS lead_campaign
    FROM marketing.conversions AS c
    JOIN marketing.leads AS l ON l.id = c.lead_id
    WHERE {{scope}}
),
touch AS (
    SELECT cv.id AS conversion_id,
           e.utm_source,
           coalesce(nullif(e.utm_campaign, ''), '(none)') AS utm_campaign,
           -- e.user_id (= cv.user_id) changes nothing here, and lets a distributed
           -- setup (Citus, events by user_id) compute the windows on each shard.
           count(*) OVER (PARTITION BY e.user_id, cv.id) AS touches,
           row_number() OVER (PARTITION BY e.user_id, cv.id ORDER BY e.occurred_at DESC, e.id DESC) AS recency
    FROM conversion AS cv
    JOIN marketing.events AS e
      ON e.user_id = cv.user_id
     AND {{touch_window(e.occurred_at, cv.occurred_at)}}
     AND {{is_touch(e)}}
),
credit AS (
    SELECT cv.occurred_at, 'first_touch' AS model, cv.lead_source AS utm_source, cv.lead_campaign AS utm_campaign,
           1::numeric AS conversions, cv.revenue AS revenue
    FROM conversion AS cv
    UNION ALL
    SELECT cv.occurred_at, 'last_touch', coalesce(t.utm_source, cv.lead_source), coalesce(t.utm_campaign, cv.lead_campaign),
           1::numeric, cv.revenue
    FROM conversion AS cv
    LEFT JOIN touch AS t ON t.conversion_id = cv.id AND t.recency = 1
    UNION ALL
    SELECT cv.occurred_at, 'linear', coalesce(t.utm_source, cv.lead_source), coalesce(t.utm_campaign, cv.lead_campaign),
           1::numeric / coalesce(t.touches, 1), cv.revenue / coalesce(t.touches, 1)
    FROM conversion AS cv
    LEFT JOIN touch AS t ON t.conversion_id = cv.id
)
SELECT
    (occurred_at AT TIME ZONE {{tz}})::date AS day,
    model,
    utm_source,
    utm_campaign,
    sum(conversions)                         AS conversions,
    sum(revenue)                             AS revenue
FROM credit
GROUP BY 1, 2, 3, 4
