-- Demo data, part 2 of 3: events {{first}}..{{last}} of {{events}} (tally
-- runs this in chunks to show progress). Placeholders, numbers only:
-- {{first}}, {{last}}, {{events}}, {{days}}, {{anchor}} (a quoted timestamptz).
--
-- Shapes: events come in sessions of 1 to 7 (blocks of 8 events cut in two);
-- a session belongs to one visitor and arrives through the visitor's home
-- campaign (70%), another paid campaign (10%, retargeting) or no campaign
-- (20%); sessions spread over the last {{days}} days with fewer on weekends;
-- 1% of sessions reach the database days late (received_at). Each chunk is
-- written in time order (see the end).
INSERT INTO marketing.events
    (event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at, received_at)
SELECT
    'demo-' || e.g,
    'visitor-' || s.visitor,
    kind.event,
    CASE kind.event
        WHEN 'purchase' THEN jsonb_build_object('url', '/checkout', 'currency', 'USD',
                                                'revenue', round(c.order_value * (0.5 + pg_temp.demo_u(e.g, 10))::numeric, 2))
        WHEN 'signup' THEN jsonb_build_object('url', '/signup', 'plan', (ARRAY['free', 'team', 'business'])[1 + floor(pg_temp.demo_u(e.g, 11) * 3)::int])
        ELSE jsonb_build_object('url', (ARRAY['/', '/pricing', '/features', '/blog', '/docs', '/customers'])[1 + floor(pg_temp.demo_u(e.g, 11) * 6)::int])
    END,
    'session-' || e.session,
    c.utm_source, c.utm_medium, c.utm_campaign,
    s.started + e.position * interval '75 seconds',
    least({{anchor}}::timestamptz, s.started + e.position * interval '75 seconds' + s.delay)
FROM (
    SELECT g, cut, 2 * block + (position >= cut)::int AS session,
           CASE WHEN position >= cut THEN position - cut ELSE position END AS position
    FROM (SELECT g, (g - 1) / 8 AS block, (g - 1) % 8 AS position, 1 + floor(pg_temp.demo_u((g - 1) / 8, 2) * 7)::int AS cut
          FROM generate_series({{first}}::bigint, {{last}}::bigint) AS g) AS blocks
) AS e
CROSS JOIN LATERAL (
    SELECT floor(pg_temp.demo_u(e.session, 3) * greatest({{events}} / 12, 20))::bigint AS visitor,
           pg_temp.demo_u(e.session, 4) AS channel
) AS v
CROSS JOIN LATERAL (
    SELECT v.visitor,
           CASE
               WHEN v.channel < 0.7 THEN 1 + width_bucket(pg_temp.demo_u(v.visitor, 1), (SELECT array_agg(hi ORDER BY id) FROM demo_campaigns WHERE id < 8))
               WHEN v.channel < 0.8 THEN 1 + floor(pg_temp.demo_u(e.session, 5) * 7)::int
               ELSE 8
           END AS campaign,
           -- 45% of weekend sessions move back to one of the five weekdays before.
           CASE WHEN extract(isodow FROM t.at) >= 6 AND pg_temp.demo_u(e.session, 7) < 0.45
                THEN t.at - (extract(isodow FROM t.at) - 5 + floor(pg_temp.demo_u(e.session, 8) * 5)) * interval '1 day'
                ELSE t.at END AS started,
           CASE WHEN pg_temp.demo_u(e.session, 12) < 0.01
                THEN (1 + floor(pg_temp.demo_u(e.session, 13) * 6)) * interval '1 day'
                ELSE interval '2 seconds' END AS delay
    FROM (SELECT {{anchor}}::timestamptz - interval '10 minutes'
                 - pg_temp.demo_u(e.session, 6) * {{days}} * interval '1 day' AS at) AS t
) AS s
JOIN demo_campaigns AS c ON c.id = s.campaign
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN pg_temp.demo_u(e.g, 9) < c.signup_rate THEN 'signup'
               WHEN pg_temp.demo_u(e.g, 9) < c.signup_rate + c.purchase_rate THEN 'purchase'
               ELSE 'page_view'
           END AS event
) AS kind
-- In time order, as an event stream arrives: a day's events sit together on
-- disk (within each chunk), not spread over every page of their month.
ORDER BY s.started + e.position * interval '75 seconds'
ON CONFLICT DO NOTHING;
