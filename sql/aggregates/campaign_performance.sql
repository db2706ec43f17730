-- reporting.campaign_performance: a plain view (always as fresh as the
-- aggregates it reads) joining, per day, source and campaign:
--   visitors, signups, purchases  from reporting.daily_campaign_metrics (summed over utm_medium)
--   conversions, revenue          from reporting.daily_attribution, model first_touch
--   spend, impressions, clicks    from reporting.daily_campaign_spend
-- A (day, source, campaign) present in any of the three has a row; what is
-- missing counts as 0. Ratios: cpa = spend / conversions (2 decimals),
-- roas = revenue / spend (4 decimals), ctr = clicks / impressions
-- (6 decimals), each NULL where its divisor is 0.
-- visitors is summed over utm_medium: a visitor who came through two mediums
-- of one campaign on one day counts twice.
SELECT
    day, utm_source, utm_campaign, spend, impressions, clicks, visitors, signups, purchases, conversions, revenue,
    round(spend / nullif(conversions, 0), 2)               AS cpa,
    round(revenue / nullif(spend, 0), 4)                   AS roas,
    round(clicks::numeric / nullif(impressions, 0), 6)     AS ctr
FROM (
    SELECT
        day,
        utm_source,
        utm_campaign,
        coalesce(s.spend, 0)::numeric(12, 2) AS spend,
        coalesce(s.impressions, 0)           AS impressions,
        coalesce(s.clicks, 0)                AS clicks,
        coalesce(m.visitors, 0)              AS visitors,
        coalesce(m.signups, 0)               AS signups,
        coalesce(m.purchases, 0)             AS purchases,
        coalesce(a.conversions, 0)           AS conversions,
        coalesce(a.revenue, 0)               AS revenue
    FROM (
        SELECT day, utm_source, utm_campaign,
               sum(visitors)::bigint AS visitors, sum(signups)::bigint AS signups, sum(purchases)::bigint AS purchases
        FROM reporting.daily_campaign_metrics
        GROUP BY day, utm_source, utm_campaign
    ) AS m
    FULL JOIN (
        SELECT day, utm_source, utm_campaign, conversions, revenue
        FROM reporting.daily_attribution
        WHERE model = 'first_touch'
    ) AS a USING (day, utm_source, utm_campaign)
    FULL JOIN reporting.daily_campaign_spend AS s USING (day, utm_source, utm_campaign)
) AS joined
