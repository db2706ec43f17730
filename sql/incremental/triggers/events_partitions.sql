-- The partitions of marketing.events: name, whether it has its TRUNCATE
-- invalidation trigger, and its bounds as the catalog prints them (NULL for
-- the default partition or an unbounded side). tally's sessions have
-- DateStyle ISO and TimeZone UTC, so bounds print as '2026-11-01 00:00:00+00',
-- which every session parses the same way.
SELECT c.relname::text,
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tally_invalidate_truncate'),
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)'),
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'marketing.events'::regclass
