-- reporting.weekly_campaign_metrics and reporting.monthly_campaign_metrics
-- (SPEC §4.1): reporting.daily_campaign_metrics rolled up to the ISO week
-- (keyed by its Monday) or the month (keyed by its first day). The daily
-- rollup's days are already in reporting_timezone, so its weeks and months
-- are too. Never read from raw events.
-- <period> is replaced by week or month; <scope> by `true`, or (incremental
-- mode) by the days of the weeks or months being recomputed.
-- Counts are summed (a session that spans midnight counts once per day, as
-- in the daily rollup). visitors_hll is the union of the daily sketches and
-- visitors its rounded cardinality: a visitor seen on several days of the
-- period counts once, within the sketch's error (about 0.8%).
SELECT
    date_trunc('{{period}}', d.day::timestamp)::date                 AS {{period}},
    d.utm_source,
    d.utm_medium,
    d.utm_campaign,
    sum(d.events)::bigint                                            AS events,
    sum(d.page_views)::bigint                                        AS page_views,
    coalesce(round(hll_cardinality(hll_union_agg(d.visitors_hll))), 0)::bigint AS visitors,
    hll_union_agg(d.visitors_hll)                                    AS visitors_hll,
    sum(d.sessions)::bigint                                          AS sessions,
    sum(d.signups)::bigint                                           AS signups,
    sum(d.purchases)::bigint                                         AS purchases,
    sum(d.revenue)                                                   AS revenue
FROM reporting.daily_campaign_metrics AS d
WHERE {{scope}}
GROUP BY 1, 2, 3, 4
