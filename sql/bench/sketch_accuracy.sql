-- Visitors over a range: the sketches (hll_union_agg of visitors_hll) and the
-- sum of daily visitors, each against the exact count(DISTINCT user_id), per
-- source/campaign with at least 1,000 visitors, for ranges of 7, 30, 90 and
-- 365 days ending on the last day with events. Run after tally has built
-- reporting.daily_campaign_metrics with sketches, e.g. on the demo data:
--   DATABASE_URL=postgres://postgres@127.0.0.1:5432/demo tally demo --once --events 1000000
--   psql -d demo -f sql/bench/sketch_accuracy.sql
-- Days are UTC days (the demo's reporting_timezone).
WITH last AS (SELECT max(day) AS day FROM reporting.daily_campaign_metrics),
ranges(days) AS (VALUES (7), (30), (90), (365)),
exact AS (
    SELECT r.days, coalesce(nullif(e.utm_source, ''), '(none)') AS utm_source,
           coalesce(nullif(e.utm_campaign, ''), '(none)') AS utm_campaign,
           count(DISTINCT e.user_id) AS visitors
    FROM ranges AS r CROSS JOIN last
    JOIN marketing.events AS e
      ON e.occurred_at >= ((last.day - r.days + 1)::timestamp AT TIME ZONE 'UTC')
     AND e.occurred_at < ((last.day + 1)::timestamp AT TIME ZONE 'UTC')
    WHERE e.user_id IS NOT NULL
    GROUP BY 1, 2, 3),
estimated AS (
    SELECT r.days, m.utm_source, m.utm_campaign,
           hll_cardinality(hll_union_agg(m.visitors_hll))::numeric AS sketched,
           sum(m.visitors) AS summed
    FROM ranges AS r CROSS JOIN last
    JOIN reporting.daily_campaign_metrics AS m ON m.day BETWEEN last.day - r.days + 1 AND last.day
    GROUP BY 1, 2, 3)
SELECT days,
       count(*) AS campaigns,
       round(avg(abs(sketched - visitors) / visitors) * 100, 2) AS sketch_mean_error_pct,
       round(max(abs(sketched - visitors) / visitors) * 100, 2) AS sketch_worst_error_pct,
       round(avg(summed / visitors), 2) AS summed_mean_overcount,
       round(max(summed / visitors), 2) AS summed_worst_overcount
FROM exact JOIN estimated USING (days, utm_source, utm_campaign)
WHERE visitors >= 1000
GROUP BY days ORDER BY days;
