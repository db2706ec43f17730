-- Demo data: a deterministic marketing data set generated inside PostgreSQL
-- (nothing is held in tally's memory, so it scales to tens of millions of
-- events). Placeholders, filled in by tally with numbers only:
--   {{seed}}   setseed() argument in [-1, 1]
--   {{events}} number of events
--   {{days}}   days of history, ending now
-- All statements run in one transaction on one session, serially, so the
-- same seed and size give the same rows.
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT setseed({{seed}});

CREATE TEMP TABLE demo_campaigns (
    id int, utm_source text, utm_medium text, utm_campaign text,
    lo float8, hi float8,                -- share of visitors, as a [lo, hi) slice of [0, 1)
    signup_rate float8, purchase_rate float8, order_value numeric,
    daily_spend numeric, cpc numeric
) ON COMMIT DROP;

INSERT INTO demo_campaigns VALUES
    (1, 'google',     'cpc',         'brand_search',   0.00, 0.22, 0.060, 0.030, 120, 300, 1.20),
    (2, 'google',     'cpc',         'generic_search', 0.22, 0.40, 0.030, 0.012,  95, 450, 2.10),
    (3, 'facebook',   'paid_social', 'spring_launch',  0.40, 0.56, 0.020, 0.008,  80, 380, 0.90),
    (4, 'linkedin',   'paid_social', 'b2b_webinar',    0.56, 0.63, 0.050, 0.015, 400, 250, 5.50),
    (5, 'newsletter', 'email',       'weekly_digest',  0.63, 0.75, 0.040, 0.025, 110,  20, 0.05),
    (6, 'partner',    'referral',    'affiliate_q4',   0.75, 0.83, 0.035, 0.020, 140, 150, 1.50),
    (7, 'tiktok',     'paid_social', 'creator_collab', 0.83, 0.90, 0.015, 0.005,  60, 200, 0.70),
    (8, NULL,         NULL,          NULL,             0.90, 1.00, 0.020, 0.010, 100,   0, 0.00);

-- Each event belongs to a visitor; a visitor arrives through one campaign
-- (10% direct, without UTM values) and comes back in sessions of 30 minutes.
INSERT INTO marketing.events
    (event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at)
SELECT
    'demo-' || r.g,
    'u' || v.visitor,
    kind.event,
    CASE kind.event
        WHEN 'purchase' THEN jsonb_build_object('url', '/checkout', 'revenue', round(c.order_value * (0.5 + r.r3)::numeric, 2))
        WHEN 'signup' THEN jsonb_build_object('url', '/signup')
        ELSE jsonb_build_object('url', (ARRAY['/', '/pricing', '/features', '/blog', '/docs'])[1 + floor(r.r3 * 5)::int])
    END,
    'u' || v.visitor || '-' || floor(extract(epoch FROM t.at) / 1800)::bigint,
    c.utm_source, c.utm_medium, c.utm_campaign,
    t.at
-- random() sits in the subquery's select list so it is drawn exactly once per
-- event, in generate_series order, whatever plan the joins get.
FROM (SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4
      FROM generate_series(1, {{events}}) AS g) AS r
CROSS JOIN LATERAL (SELECT floor(r.r1 * greatest({{events}} / 10, 10))::bigint AS visitor) AS v
JOIN demo_campaigns AS c
  ON ((hashtext('u' || v.visitor)::bigint + 2147483648) / 4294967296.0) >= c.lo
 AND ((hashtext('u' || v.visitor)::bigint + 2147483648) / 4294967296.0) < c.hi
CROSS JOIN LATERAL (SELECT CASE
        WHEN r.r2 < c.signup_rate THEN 'signup'
        WHEN r.r2 < c.signup_rate + c.purchase_rate THEN 'purchase'
        ELSE 'page_view' END AS event) AS kind
CROSS JOIN LATERAL (SELECT now() - r.r4 * interval '1 day' * {{days}} AS at) AS t
ON CONFLICT DO NOTHING;

-- A lead for every visitor who signed up, attributed to their campaign.
INSERT INTO marketing.leads (email, source, campaign, utm_medium, user_id, status, score, created_at)
SELECT DISTINCT ON (e.user_id)
    e.user_id || '@example.com', e.utm_source, e.utm_campaign, e.utm_medium, e.user_id,
    (ARRAY['new', 'contacted', 'qualified', 'converted', 'lost'])[1 + abs(hashtext(e.user_id)) % 5],
    abs(hashtext(e.user_id || 'score')) % 100,
    e.occurred_at
FROM marketing.events AS e
WHERE e.event = 'signup' AND e.event_id LIKE 'demo-%'
ORDER BY e.user_id, e.occurred_at
ON CONFLICT (email) DO NOTHING;

-- Their signups and purchases as conversions.
INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at)
SELECT l.id, e.event,
       CASE WHEN e.event = 'purchase' THEN (e.properties ->> 'revenue')::numeric ELSE 0 END,
       e.occurred_at
FROM marketing.events AS e
JOIN marketing.leads AS l ON l.user_id = e.user_id
WHERE e.event IN ('signup', 'purchase') AND e.event_id LIKE 'demo-%' AND e.occurred_at >= l.created_at;

-- Daily spend, impressions and clicks of the paid campaigns.
INSERT INTO marketing.campaign_spend (day, utm_source, utm_campaign, spend, impressions, clicks)
SELECT d::date, c.utm_source, c.utm_campaign, s.spend, round(s.clicks * 40), round(s.clicks)
FROM demo_campaigns AS c
CROSS JOIN generate_series(current_date - {{days}}, current_date, interval '1 day') AS d
CROSS JOIN LATERAL (SELECT round(c.daily_spend * (0.8 + 0.4 * random())::numeric, 2) AS spend) AS s0
CROSS JOIN LATERAL (SELECT s0.spend, CASE WHEN c.cpc > 0 THEN s0.spend / c.cpc ELSE 0 END AS clicks) AS s
WHERE c.utm_source IS NOT NULL AND c.daily_spend > 0
ON CONFLICT DO NOTHING;
