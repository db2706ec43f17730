-- Demo data, part 1 of 3: the session-local helpers the other parts use.
-- Everything here is temporary and disappears with the transaction.
-- Placeholders (numbers only, filled in by tally): {{seed}}.

-- Calendar arithmetic (weekends, days) in UTC whatever the server's default.
SET LOCAL timezone = 'UTC';

-- A uniform number in [0, 1) that depends only on (key, stream) and the
-- seed: the generator never calls random(), so the data is the same for the
-- same seed whatever the plan, the chunking or the parallelism.
CREATE FUNCTION pg_temp.demo_u(key bigint, stream int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(key, {{seed}}::bigint * 1000 + stream) & 9007199254740991)::float8 / 9007199254740992.0 $$;

-- The campaigns. A visitor's home campaign is the slice of [0, 1) its
-- number falls in (`hi` is the upper end of the slice); id 8 is direct
-- traffic (no UTM values). Rates are per event.
CREATE TEMP TABLE demo_campaigns (
    id int PRIMARY KEY, utm_source text, utm_medium text, utm_campaign text, hi float8,
    signup_rate float8, purchase_rate float8, order_value numeric,
    daily_spend numeric, cpc numeric, ctr numeric
) ON COMMIT DROP;

INSERT INTO demo_campaigns VALUES
    (1, 'google',     'cpc',         'brand_search',   0.20, 0.050, 0.022, 120,  220, 1.10, 0.080),
    (2, 'google',     'cpc',         'generic_search', 0.38, 0.028, 0.010,  95,  520, 2.40, 0.035),
    (3, 'facebook',   'paid_social', 'spring_launch',  0.53, 0.020, 0.007,  85,  340, 0.85, 0.012),
    (4, 'linkedin',   'paid_social', 'b2b_webinar',    0.60, 0.045, 0.006, 650,  300, 6.50, 0.006),
    (5, 'newsletter', 'email',       'weekly_digest',  0.71, 0.035, 0.020, 110,   25, 0.05, 0.210),
    (6, 'partner',    'referral',    'affiliate_q4',   0.79, 0.030, 0.016, 140,  160, 1.60, 0.020),
    (7, 'tiktok',     'paid_social', 'creator_collab', 0.87, 0.012, 0.004,  60,  260, 0.70, 0.009),
    (8, NULL,         NULL,          NULL,             1.00, 0.020, 0.009, 100,    0, 0.00, 0.000);
