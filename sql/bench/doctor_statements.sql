-- Five slow statements on the demo data (tally demo --events 1000000), for
-- scripts/doctor-bench.sh and the "Query doctor on the demo data" table of
-- BENCHMARKS.md. One statement per entry, each ending with a semicolon at
-- the end of a line.

-- Everything one session did (support looking at a visit).
SELECT * FROM marketing.events WHERE session_id = 'session-2121';

-- The latest purchases of one campaign.
SELECT id, user_id, occurred_at FROM marketing.events
WHERE utm_campaign = 'weekly_digest' AND event = 'purchase' ORDER BY occurred_at DESC LIMIT 20;

-- The biggest purchases.
SELECT * FROM marketing.conversions WHERE kind = 'purchase' ORDER BY revenue DESC LIMIT 10;

-- The sales queue: qualified leads from one source, best first.
SELECT id, email, score FROM marketing.leads WHERE status = 'qualified' AND source = 'partner' ORDER BY score DESC LIMIT 50;

-- Email traffic by source over the last week.
SELECT utm_source, count(*) FROM marketing.events
WHERE utm_medium = 'email' AND occurred_at >= now() - interval '7 days' GROUP BY 1;
