-- reporting.daily_attribution: conversions and revenue credited to campaigns
-- by five models, per day of the conversion (SPEC §4, §4.2).
-- <tz> is the reporting_timezone literal; <lookback_days> the configured
-- attribution_lookback_days and <half_life_days> attribution_half_life_days
-- (integers); <scope> `true` or the ranges of conversions.occurred_at of the
-- days being recomputed; <touch_scope> `true`, or (incremental mode) literal
-- ranges of e.occurred_at a little wider than those days' touch windows, so
-- that the partitions no touch can be in are pruned when it is planned.
--
-- A touch of a conversion is an event of the lead's user (events.user_id =
-- leads.user_id) with a utm_source, at or before the conversion and less than
-- <lookback_days> days before it: the rule of sql/rules/touch_window.sql,
-- which the invalidation triggers of incremental mode share. Touches are
-- ordered by occurred_at, then event id.
--   first_touch:    the lead's own source/campaign (the brief's first-touch query).
--   last_touch:     the latest touch.
--   linear:         each of the n touches gets 1/n.
--   time_decay:     touch i, a_i days before the conversion (seconds / 86400),
--                   weighs 2^(-a_i / half_life); it gets weight_i / sum of weights.
--   position_based: one touch gets 1, two get 1/2 each; with n >= 3 the first
--                   and the last get 0.4 each and the n - 2 between share 0.2.
-- Every model but first_touch falls back to the lead's source/campaign when
-- the conversion has no touch. Credit multiplies the conversion (1) and its
-- revenue. Missing or empty values group under '(none)'. `conversions` is
-- numeric, so each model's credit sums to 1 per conversion (up to rounding).
-- Every model is computed in one pass over each conversion's touches, sorted
-- once; the time-decay weights are summed in that order, so a day
-- recomputed alone (incremental mode) equals a full build to the last digit.
WITH conversion AS (
    SELECT c.id, c.occurred_at, c.revenue, l.user_id,
           coalesce(nullif(l.source, ''), '(none)')   AS lead_source,
           coalesce(nullif(l.campaign, ''), '(none)') AS lead_campaign
    FROM marketing.conversions AS c
    JOIN marketing.leads AS l ON l.id = c.lead_id
    WHERE {{scope}}
),
ranked AS (
    SELECT cv.id AS conversion_id,
           e.occurred_at,
           e.utm_source,
           coalesce(nullif(e.utm_campaign, ''), '(none)') AS utm_campaign,
           -- e.user_id (= cv.user_id) changes nothing here, and lets a distributed
           -- setup (Citus, events by user_id) compute the windows on each shard.
           count(*) OVER per_conversion AS touches,
           max(e.occurred_at) OVER per_conversion AS latest,
           row_number() OVER (per_conversion ORDER BY e.occurred_at DESC, e.id DESC) AS recency
    FROM conversion AS cv
    JOIN marketing.events AS e
      ON e.user_id = cv.user_id
     AND {{touch_window(e.occurred_at, cv.occurred_at)}}
     AND {{is_touch(e)}}
     AND {{touch_scope}}
    WINDOW per_conversion AS (PARTITION BY e.user_id, cv.id)
),
credited AS (
    -- The touches of a conversion that credit one source/campaign, together.
    SELECT conversion_id, utm_source, utm_campaign,
           count(*) AS touched,
           min(touches) AS touches,
           bool_or(recency = 1) AS has_last,
           -- Time-decay weights relative to the latest touch (which weighs 1):
           -- the ratios of 2^(-a_i / half_life), never all 0 in floating point.
           sum(power(2::float8, -extract(epoch FROM latest - occurred_at)::float8
                                / (86400.0 * {{half_life_days}}))::numeric) AS weight,
           sum(CASE WHEN touches = 1 THEN 1
                    WHEN touches = 2 THEN 0.5
                    WHEN recency = 1 OR recency = touches THEN 0.4
                    ELSE 0.2 / (touches - 2) END) AS position
    FROM ranked
    GROUP BY conversion_id, utm_source, utm_campaign
),
touch AS (
    SELECT credited.*, sum(weight) OVER (PARTITION BY conversion_id) AS weights
    FROM credited
),
credit AS (
    SELECT cv.occurred_at, 'first_touch' AS model, cv.lead_source AS utm_source, cv.lead_campaign AS utm_campaign,
           1::numeric AS conversions, cv.revenue AS revenue
    FROM conversion AS cv
    UNION ALL
    SELECT cv.occurred_at, m.model, coalesce(t.utm_source, cv.lead_source), coalesce(t.utm_campaign, cv.lead_campaign),
           m.conversions, m.revenue
    FROM conversion AS cv
    LEFT JOIN touch AS t ON t.conversion_id = cv.id
    CROSS JOIN LATERAL (
        SELECT coalesce(t.has_last, true) AS has_last,
               coalesce(t.weight / t.weights, 1) AS decay,
               coalesce(t.position, 1) AS position
    ) AS share
    CROSS JOIN LATERAL (VALUES
        ('last_touch', CASE WHEN share.has_last THEN 1::numeric END, CASE WHEN share.has_last THEN cv.revenue END),
        -- k touches of n: k times the 1/n each one gets (the same sum, to the digit).
        ('linear', coalesce(t.touched, 1) * (1::numeric / coalesce(t.touches, 1)),
                   coalesce(t.touched, 1) * (cv.revenue / coalesce(t.touches, 1))),
        ('time_decay', share.decay, cv.revenue * share.decay),
        ('position_based', share.position, cv.revenue * share.position)
    ) AS m(model, conversions, revenue)
    WHERE m.conversions IS NOT NULL
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
