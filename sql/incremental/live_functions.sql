-- The two functions behind reporting.<name>_live (sql/incremental/live.sql).
-- They are STABLE, so they read at the reader's snapshot, and SECURITY
-- DEFINER (owned by tally's role, with a fixed search_path), so a reader of
-- reporting (tally_reader) gets the aggregate's rows without any right on
-- marketing or tally.
--
-- {{days}}(): the days the waiting marks dirty, sorted, with the claim's
-- rules (sql/incremental/dirty.sql, here {{dirty}} over live_marks), or NULL
-- when a TRUNCATE's `all` mark waits.
--
-- {{rows}}(days): the definition recomputed for those days (every day when
-- NULL, after a TRUNCATE). The scope is built from the days as literal time ranges, one
-- per run of consecutive days, and the statement is planned for them
-- (EXECUTE): partitions outside are pruned when it is planned and the
-- estimate is the dirty days' rows, not the table's. jit is off: the
-- statement reads few days, and compiling it would cost more than running it.
-- work_mem is {{work_mem}} (a day of 27,000 events sorts in about 4.4 MB;
-- at PostgreSQL's default of 4 MB it spilled to disk).
-- {{definition}}: the definition as a literal, whose scope is {{marker}};
-- {{range}}: a format() pattern for one run (%1$s first day, %2$s last day,
-- %3$s the day after), {{aggregate}}: the name as a literal;
-- {{search_path}}: pg_catalog, the schema of hll when installed, pg_temp.
CREATE FUNCTION {{days}}() RETURNS date[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {{search_path}}
AS $live$
WITH live_marks AS (
    SELECT kind, first_day, last_day, lead_id FROM tally.invalidations WHERE aggregate = {{aggregate}}),
live_dirty AS (
{{dirty}})
SELECT CASE WHEN EXISTS (SELECT 1 FROM live_marks WHERE kind = 'all') THEN NULL
       ELSE array(SELECT day FROM live_dirty WHERE day BETWEEN date '0001-01-01' AND date '9999-12-31' ORDER BY day)
       END
$live$;
CREATE FUNCTION {{rows}}(dirty date[]) RETURNS SETOF {{table}}
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {{search_path}} SET jit = off
    SET work_mem = {{work_mem}}
AS $live$
DECLARE
    scope text := 'true';
BEGIN
    IF dirty IS NOT NULL THEN
        SELECT string_agg(format({{range}}, to_char(first, 'YYYY-MM-DD'), to_char(last, 'YYYY-MM-DD'),
                                 to_char(last + 1, 'YYYY-MM-DD')), ' OR ')
        INTO scope
        FROM (SELECT min(day) AS first, max(day) AS last
              FROM (SELECT day, day - (row_number() OVER (ORDER BY day))::int AS run
                    FROM unnest(dirty) AS day) AS numbered
              GROUP BY run) AS runs;
        IF scope IS NULL THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY EXECUTE replace({{definition}}, {{marker}}, '(' || scope || ')');
END
$live$;
