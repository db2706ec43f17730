-- When tally first saw each index. PostgreSQL does not record when an index
-- was created, and `tally doctor` calls an index unused only once it has
-- been watched for --min-stats-age: an index created yesterday has had one
-- day to be used, however old the database's statistics are
-- (docs/query-doctor.md). `tally doctor` and the worker's maintenance (at
-- start-up and on its schedule) record new indexes and forget dropped ones.
--
-- Keyed by oid, as PostgreSQL's usage statistics are: a renamed index keeps
-- its age and its scans, a dropped and re-created one starts afresh on both.
CREATE TABLE tally.index_sightings (
    index_oid  oid PRIMARY KEY,
    index_name text NOT NULL,               -- schema.name when last seen, for people
    first_seen timestamptz NOT NULL DEFAULT now(),
    -- It existed when this migration ran, so its age is unknown: it is
    -- judged over the whole statistics window, as before this table.
    at_install boolean NOT NULL
);

-- Every index tally's audit judges (the same set as src/doctor/audit/load.rs:
-- user schemas, partitions' indexes through their parent).
INSERT INTO tally.index_sightings (index_oid, index_name, at_install)
SELECT c.oid, format('%I.%I', n.nspname, c.relname), true
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
  AND NOT c.relispartition;
