-- reporting.daily_campaign_spend: what the ad platforms report per day and
-- campaign (marketing.campaign_spend), copied into reporting so dashboards
-- and campaign_performance read nothing from marketing. Its day is the
-- platform's calendar day, as given. <scope> is `true` or ranges of days.
SELECT
    s.day,
    s.utm_source,
    s.utm_campaign,
    s.spend,
    s.impressions,
    s.clicks
FROM marketing.campaign_spend AS s
WHERE {{scope}}
