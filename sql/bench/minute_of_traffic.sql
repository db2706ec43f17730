-- One minute of traffic for the whole-cycle bench (`tally bench`): 5,000
-- new events in the last minute across the demo's campaigns, from visitors
-- who are leads (so they are attribution touches), 50 new conversions of
-- leads, and 20 late events for the day three days ago (a mobile SDK
-- flushing its queue). {{run}}: a number that makes this run's ids unique.
WITH visitors AS (
    SELECT array_agg(user_id ORDER BY id) AS ids
    FROM (SELECT id, user_id FROM marketing.leads WHERE user_id IS NOT NULL ORDER BY id LIMIT 50000) AS l)
INSERT INTO marketing.events (event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at)
SELECT 'minute-{{run}}-' || g, v.ids[1 + (g * 7919 + {{run}} * 104729) % cardinality(v.ids)],
       (ARRAY['page_view', 'page_view', 'page_view', 'signup', 'purchase'])[1 + g % 5],
       CASE WHEN g % 5 = 4 THEN jsonb_build_object('revenue', 20 + g % 80) ELSE '{}'::jsonb END,
       'minute-{{run}}-session-' || (g / 4), c.source, c.medium, c.campaign,
       now() - (g % 60) * interval '1 second'
FROM generate_series(0, 4999) AS g
CROSS JOIN visitors AS v
JOIN (VALUES (0, 'google', 'cpc', 'brand_search'), (1, 'facebook', 'paid_social', 'spring_launch'),
             (2, 'newsletter', 'email', 'weekly_digest'), (3, 'partner', 'referral', 'affiliate_q4'))
     AS c(i, source, medium, campaign) ON c.i = g % 4;
INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at)
SELECT id, 'purchase', 100 + n, now()
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM marketing.leads
      WHERE user_id IS NOT NULL ORDER BY id OFFSET {{run}} * 50 LIMIT 50) AS l;
INSERT INTO marketing.events (event_id, user_id, event, session_id, utm_source, utm_medium, utm_campaign, occurred_at)
SELECT 'minute-{{run}}-late-' || g, 'visitor-' || (1000 + g), 'page_view', 'minute-{{run}}-late-' || g,
       'google', 'cpc', 'brand_search', now() - interval '3 days' + g * interval '1 minute'
FROM generate_series(1, 20) AS g;
