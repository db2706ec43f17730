-- no-transaction
-- Incremental refreshes of daily_lead_funnel recompute leads by ranges of
-- created_at; without this index each one scans every lead. Built
-- CONCURRENTLY (no lock that blocks writes), so this file runs outside a
-- transaction (the header above) and holds this one statement. If the build
-- is interrupted, PostgreSQL leaves an INVALID index: `tally doctor` reports
-- it, and `REINDEX INDEX CONCURRENTLY marketing.leads_created_at_idx` repairs it.
-- squawk-ignore ban-concurrent-index-creation-in-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_created_at_idx ON marketing.leads (created_at);
