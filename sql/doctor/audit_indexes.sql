-- The indexes `tally doctor` judges: every index of a user schema (not a
-- partition's own index), with its keys, operator classes, INCLUDE columns,
-- predicate, validity, the constraint or foreign key it serves, whether a
-- build is in progress, and scans and sizes summed over a partitioned
-- index's partitions; for an invalid partitioned index, the partitions that
-- lack theirs.
WITH idx AS (
    SELECT i.*, ic.relname AS index_name, ic.relkind AS index_kind, n.nspname AS schema,
           t.relname AS table_name, am.amname
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = ic.relnamespace
    JOIN pg_am am ON am.oid = ic.relam
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
      AND NOT ic.relispartition)
SELECT indexrelid AS oid, format('%I.%I', schema, index_name) AS index, format('%I.%I', schema, table_name) AS "table",
       amname::text AS method,
       array(SELECT pg_get_indexdef(indexrelid, k, true) FROM generate_series(1, indnkeyatts) k ORDER BY k) AS columns,
       array(SELECT pg_get_indexdef(indexrelid, k, true) || ' ' || indclass[k - 1]::text || ' '
                    || indoption[k - 1]::text || ' ' || indcollation[k - 1]::text
             FROM generate_series(1, indnkeyatts) k ORDER BY k) AS signature,
       array(SELECT pg_get_indexdef(indexrelid, k, true)
             FROM generate_series(indnkeyatts + 1, indnatts) k ORDER BY k) AS include,
       pg_get_expr(indpred, indrelid, true) AS predicate, indisvalid AS valid, indisunique AS "unique",
       coalesce((SELECT conname::text FROM pg_constraint WHERE conindid = indexrelid
                 ORDER BY contype <> 'p', contype <> 'u' LIMIT 1),
                CASE WHEN indisreplident THEN 'REPLICA IDENTITY' END) AS "constraint",
       (SELECT c.conname::text FROM pg_constraint c
        WHERE c.contype = 'f' AND c.conrelid = indrelid AND indpred IS NULL AND amname IN ('btree', 'hash')
          AND cardinality(c.conkey) <= indnkeyatts
          AND (SELECT array_agg(indkey[k]) FROM generate_series(0, cardinality(c.conkey) - 1) k) @> c.conkey
        ORDER BY 1 LIMIT 1) AS foreign_key,
       index_kind = 'I' AS partitioned,
       EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
               WHERE p.index_relid = indexrelid OR (p.relid = indrelid AND NOT indisvalid)) AS in_progress,
       coalesce((SELECT sum(s.idx_scan) FROM (SELECT indexrelid AS relid UNION SELECT relid FROM pg_partition_tree(indexrelid)) pt
                 JOIN pg_stat_all_indexes s ON s.indexrelid = pt.relid), 0)::int8 AS scans,
       coalesce((SELECT sum(pg_relation_size(pt.relid))
                 FROM (SELECT indexrelid AS relid UNION SELECT relid FROM pg_partition_tree(indexrelid)) pt), 0)::int8 AS size_bytes,
       coalesce((SELECT sum(coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0))
                 FROM (SELECT indrelid AS relid UNION SELECT relid FROM pg_partition_tree(indrelid)) pt
                 JOIN pg_stat_all_tables s ON s.relid = pt.relid), 0)::int8 AS table_reads,
       substring(pg_get_indexdef(indexrelid) from ' USING (.*)$') AS "using",
       CASE WHEN index_kind = 'I' AND NOT indisvalid THEN
           array(SELECT format('%I.%I', pn.nspname, pc.relname)
                 FROM pg_partition_tree(indrelid) pt
                 JOIN pg_class pc ON pc.oid = pt.relid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                 WHERE pt.isleaf AND NOT EXISTS (
                     SELECT 1 FROM pg_partition_tree(indexrelid) it
                     JOIN pg_index li ON li.indexrelid = it.relid WHERE li.indrelid = pt.relid)
                 ORDER BY 1)
       ELSE ARRAY[]::text[] END AS missing_partitions
FROM idx ORDER BY 2, 1
