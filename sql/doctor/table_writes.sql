-- For `tally doctor --workload`: rows written per second into $1
-- (`schema.name`) and its partitions since the statistics were reset
-- (inserts, and updates other than HOT ones: both add an entry to every
-- index; deletes leave index entries to VACUUM), and its index count.
SELECT coalesce(sum(t.n_tup_ins + t.n_tup_upd - t.n_tup_hot_upd), 0)::float8
         / greatest(extract(epoch FROM now() - coalesce((SELECT stats_reset FROM pg_stat_database
                                                          WHERE datname = current_database()),
                                                         pg_postmaster_start_time())), 1)::float8,
       (SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass)
FROM pg_stat_user_tables AS t
-- (pg_partition_tree gives nothing for a table that is not partitioned)
WHERE t.relid = $1::regclass OR t.relid IN (SELECT relid FROM pg_partition_tree($1::regclass))
