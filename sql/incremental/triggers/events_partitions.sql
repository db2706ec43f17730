-- The partitions of marketing.events: name, whether it has its TRUNCATE
-- invalidation trigger, and its bounds ({{bounds}}:
-- sql/partitions/events_bounds.sql).
SELECT p.name,
       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.oid AND t.tgname = 'tally_invalidate_truncate'),
       p.lower,
       p.upper
FROM ({{bounds}}) AS p
