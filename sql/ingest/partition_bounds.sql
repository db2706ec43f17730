-- The bounds of the partitions of marketing.events that have both (not the
-- default partition, not MINVALUE or MAXVALUE): a row whose occurred_at is
-- inside one of them lands there, never in the default partition. Read in
-- the batch's transaction after its COPY (src/ingest/load/direct.rs); the
-- bounds print and read back in the session's own DateStyle and TimeZone.
SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([^'']+)''\)')::timestamptz AS lower,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz AS upper
FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'marketing.events'::regclass
  AND pg_get_expr(c.relpartbound, c.oid) ~ '^FOR VALUES FROM \(''[^'']+''\) TO \(''[^'']+''\)$'
