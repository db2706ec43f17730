-- What a set of marks dirties, as common table expressions ending in
-- `split`, for the claim of a refresh (claim.sql) and the live views
-- (live_functions.sql). {{marks}}: a relation of kind, first_day, last_day,
-- lead_id, via and keys; {{dirty}}: sql/incremental/dirty.sql over
-- split_whole_marks. A mark's keys are usable when they hold values and no
-- NULL; a mark is keyed when {{keyed}} holds (for an aggregate with a live
-- key: a `days` mark of one day with usable keys; otherwise never).
--   whole: the days rewritten whole, sorted, or NULL when an `all` mark (a
--          TRUNCATE) dirties everything (then keyed and keys are empty);
--   keyed: the other days, dirtied only by keyed marks: only their rows
--          whose key value is in keys are rewritten;
--   keys:  the union of those marks' key values. Past {{max_keys}} values
--          the keyed days are rewritten whole.
split_usable AS (
    SELECT kind, first_day, last_day, lead_id, via, keys,
           coalesce(cardinality(keys) > 0 AND array_position(keys, NULL) IS NULL, false) AS usable_keys
    FROM {{marks}}),
split_marks AS (
    SELECT *, {{keyed}} AS keyed FROM split_usable),
split_whole_marks AS (
    SELECT kind, first_day, last_day, lead_id, via, keys, usable_keys FROM split_marks WHERE NOT keyed),
split_dirty AS (
{{dirty}}),
split_days AS (
    SELECT array(SELECT day FROM split_dirty WHERE day BETWEEN date '0001-01-01' AND date '9999-12-31'
                 ORDER BY day) AS days),
split_keyed AS (
    SELECT m.first_day AS day, k.key
    FROM split_marks AS m CROSS JOIN LATERAL unnest(m.keys) AS k(key), split_days
    WHERE m.keyed AND m.first_day BETWEEN date '0001-01-01' AND date '9999-12-31'
      AND m.first_day <> ALL (split_days.days)),
split_state AS (
    SELECT EXISTS (SELECT 1 FROM split_marks WHERE kind = 'all') AS everything,
           (SELECT count(DISTINCT key) FROM split_keyed) > {{max_keys}} AS too_many),
split AS (
    SELECT CASE WHEN s.everything THEN NULL
                WHEN s.too_many THEN array(SELECT day FROM unnest(d.days) AS day UNION SELECT day FROM split_keyed
                                           ORDER BY 1)
                ELSE d.days END AS whole,
           CASE WHEN s.everything OR s.too_many THEN '{}'::date[]
                ELSE array(SELECT DISTINCT day FROM split_keyed ORDER BY 1) END AS keyed,
           CASE WHEN s.everything OR s.too_many THEN '{}'::text[]
                ELSE array(SELECT DISTINCT key FROM split_keyed ORDER BY 1) END AS keys
    FROM split_days AS d, split_state AS s)
