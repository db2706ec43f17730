-- reporting.daily_event_counts for a few days: the same rows as
-- sql/aggregates/daily_event_counts.sql in two steps (events grouped per
-- visitor first, then the distinct count over those groups; text keys
-- under the "C" collation), as
-- sql/aggregates/days/daily_campaign_metrics.sql explains.
SELECT
    e.day,
    e.event,
    sum(e.events)::bigint                     AS events,
    count(DISTINCT e.user_id)                 AS visitors{{visitors_hll}}
FROM (
    SELECT (e.occurred_at AT TIME ZONE {{tz}})::date AS day, e.event COLLATE "C" AS event,
           e.user_id COLLATE "C" AS user_id, count(*) AS events
    FROM marketing.events AS e
    WHERE {{scope}}
    GROUP BY 1, 2, 3
) AS e
GROUP BY 1, 2
