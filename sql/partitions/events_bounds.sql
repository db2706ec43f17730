-- The partitions of marketing.events with their bounds as the catalog prints
-- them (NULL for the default partition or an unbounded side). tally's
-- sessions have DateStyle ISO and TimeZone UTC, so bounds print as
-- '2026-11-01 00:00:00+00', which every session parses the same way. Read by
-- the TRUNCATE triggers (sql/incremental/triggers/events_partitions.sql) and
-- by ingest's fast path (src/ingest/load/direct.rs).
SELECT c.oid,
       c.relname::text AS name,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)') AS lower,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)') AS upper
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'marketing.events'::regclass
