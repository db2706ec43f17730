-- reporting.daily_lead_funnel: leads per day of creation and source/campaign (SPEC §4).
-- <tz> is the configured reporting_timezone as a quoted literal; <scope> is
-- `true` or the created_at ranges of the days being recomputed.
-- A missing or empty source or campaign groups under '(none)'.
SELECT
    (l.created_at AT TIME ZONE {{tz}})::date                          AS day,
    coalesce(nullif(l.source, ''), '(none)')                          AS source,
    coalesce(nullif(l.campaign, ''), '(none)')                        AS campaign,
    count(*)                                                          AS leads_created,
    count(*) FILTER (WHERE l.status IN ('qualified', 'converted'))    AS qualified,
    count(*) FILTER (WHERE l.status = 'converted')                    AS converted,
    round(avg(l.score), 2)                                            AS avg_score
FROM marketing.leads AS l
WHERE {{scope}}
GROUP BY 1, 2, 3
