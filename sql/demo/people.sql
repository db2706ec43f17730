-- Demo data, part 3 of 3: leads, conversions and campaign spend, derived from
-- the generated events. Placeholders, numbers only: {{days}}, {{anchor}}.

-- A lead for every visitor who signed up or bought, created at the first of
-- those events and attributed to their home campaign; buyers are 'converted'.
INSERT INTO marketing.leads (email, source, campaign, utm_medium, user_id, status, score, created_at)
SELECT
    u.user_id || '@example.com', c.utm_source, c.utm_campaign, c.utm_medium, u.user_id, st.status,
    CASE st.status
        WHEN 'converted' THEN 70 WHEN 'qualified' THEN 50 WHEN 'contacted' THEN 20 WHEN 'new' THEN 10 ELSE 0
    END + floor(pg_temp.demo_u(u.visitor, 14) * 30)::int,
    u.first_conversion
FROM (
    SELECT user_id, substr(user_id, 9)::bigint AS visitor,
           min(occurred_at) AS first_conversion,
           bool_or(event = 'purchase') AS purchased
    FROM marketing.events
    WHERE event IN ('signup', 'purchase') AND event_id LIKE 'demo-%'
    GROUP BY user_id
) AS u
JOIN demo_campaigns AS c
  ON c.id = 1 + width_bucket(pg_temp.demo_u(u.visitor, 1), (SELECT array_agg(hi ORDER BY id) FROM demo_campaigns WHERE id < 8))
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN u.purchased THEN 'converted'
               WHEN pg_temp.demo_u(u.visitor, 15) < 0.35 THEN 'new'
               WHEN pg_temp.demo_u(u.visitor, 15) < 0.60 THEN 'contacted'
               WHEN pg_temp.demo_u(u.visitor, 15) < 0.85 THEN 'qualified'
               ELSE 'lost'
           END AS status
) AS st
ON CONFLICT (email) DO NOTHING;

-- Their signups and purchases as conversions, in time order.
INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at)
SELECT l.id, e.event,
       CASE WHEN e.event = 'purchase' THEN (e.properties ->> 'revenue')::numeric ELSE 0 END,
       e.occurred_at
FROM marketing.events AS e
JOIN marketing.leads AS l ON l.user_id = e.user_id
WHERE e.event IN ('signup', 'purchase') AND e.event_id LIKE 'demo-%' AND e.occurred_at >= l.created_at
ORDER BY e.occurred_at;

-- Leads met offline (no user_id, so no touches): one for every 100 online
-- leads; half of them buy within two weeks.
INSERT INTO marketing.leads (email, source, campaign, utm_medium, status, score, created_at)
SELECT 'attendee-' || i || '@example.com', 'trade_show', 'expo_2026', 'offline',
       (ARRAY['new', 'contacted', 'qualified', 'converted'])[1 + floor(pg_temp.demo_u(-i, 16) * 4)::int],
       floor(pg_temp.demo_u(-i, 17) * 100)::int,
       {{anchor}}::timestamptz - pg_temp.demo_u(-i, 18) * {{days}} * interval '1 day'
FROM generate_series(1, greatest((SELECT count(*) FROM marketing.leads) / 100, 3)) AS i
ON CONFLICT (email) DO NOTHING;

INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at)
SELECT l.id, 'purchase', round((200 + pg_temp.demo_u(hashtext(l.email), 19) * 600)::numeric, 2),
       least({{anchor}}::timestamptz, l.created_at + pg_temp.demo_u(hashtext(l.email), 20) * interval '14 days')
FROM marketing.leads AS l
WHERE l.email LIKE 'attendee-%' AND pg_temp.demo_u(hashtext(l.email), 21) < 0.5;

-- Daily spend of the paid campaigns, lower on weekends.
INSERT INTO marketing.campaign_spend (day, utm_source, utm_campaign, spend, impressions, clicks)
SELECT d.day, c.utm_source, c.utm_campaign, s.spend,
       round(round(s.spend / c.cpc) / c.ctr), round(s.spend / c.cpc)
FROM demo_campaigns AS c
CROSS JOIN (SELECT ({{anchor}}::timestamptz AT TIME ZONE 'UTC')::date - n AS day FROM generate_series(0, {{days}}) AS n) AS d
CROSS JOIN LATERAL (
    SELECT round(c.daily_spend
                 * CASE WHEN extract(isodow FROM d.day) >= 6 THEN 0.7 ELSE 1.0 END
                 * (0.8 + 0.4 * pg_temp.demo_u((d.day - date '2000-01-01') * 10 + c.id, 22))::numeric, 2) AS spend
) AS s
WHERE c.daily_spend > 0
ON CONFLICT DO NOTHING;
