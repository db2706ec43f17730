-- The three schemas tally owns (SPEC §3).
--   marketing: raw data written by applications and `tally ingest`
--   reporting: what dashboards read (the only schema tally_reader may read)
--   tally:     the worker's own bookkeeping
CREATE SCHEMA IF NOT EXISTS marketing;
CREATE SCHEMA IF NOT EXISTS reporting;
CREATE SCHEMA IF NOT EXISTS tally;

-- gen_random_uuid() is built into PostgreSQL 13+; no extension needed.
