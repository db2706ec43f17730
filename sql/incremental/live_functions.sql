-- The two functions behind reporting.<name>_live (sql/incremental/live.sql).
-- They are STABLE, so they read at the reader's snapshot, and SECURITY
-- DEFINER (owned by tally's role, with a fixed search_path), so a reader of
-- reporting (tally_reader) gets the aggregate's rows without any right on
-- marketing or tally.
--
-- {{days}}(): what the waiting marks dirty (whole days, keyed days and
-- their key values), with the claim's rules: {{split}}
-- (sql/incremental/split.sql) over live_marks.
--
-- {{rows}}(whole, keyed, keys): the definition recomputed for those days.
-- The scope is built from the days as literal time ranges, one per run of
-- consecutive days, the keyed ones with `{{key}} = ANY ($1)` (keys, passed
-- as a value, never as SQL text), and the statement is planned for them
-- (EXECUTE): partitions outside are pruned when it is planned and the
-- estimate is the dirty days' rows, not the table's. jit is off: the
-- statement reads few days, and compiling it would cost more than running it.
-- work_mem is {{work_mem}} (a day of 27,000 events sorts in about 4.4 MB;
-- at PostgreSQL's default of 4 MB it spilled to disk).
-- {{definition}}: the definition as a literal, whose scope is {{marker}};
-- {{range}}: a format() pattern for one run (%1$s first day, %2$s last day,
-- %3$s the day after), {{aggregate}}: the name as a literal;
-- {{search_path}}: pg_catalog, the schema of hll when installed, pg_temp.
CREATE FUNCTION {{days}}(OUT whole date[], OUT keyed date[], OUT keys text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {{search_path}}
AS $live$
WITH live_marks AS (
    SELECT kind, first_day, last_day, lead_id, via, keys FROM tally.invalidations
    WHERE aggregate = {{aggregate}} OR members @> ARRAY[{{aggregate}}::text]),
{{split}}
SELECT whole, keyed, keys FROM split
$live$;
CREATE FUNCTION {{rows}}(whole date[], keyed date[], keys text[]) RETURNS SETOF {{table}}
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = {{search_path}} SET jit = off
    SET work_mem = {{work_mem}}
AS $live$
DECLARE
    scope text := 'true';
    whole_scope text;
    keyed_scope text;
BEGIN
    IF whole IS NOT NULL THEN
        SELECT string_agg(format({{range}}, to_char(first, 'YYYY-MM-DD'), to_char(last, 'YYYY-MM-DD'),
                                 to_char(last + 1, 'YYYY-MM-DD')), ' OR ') FILTER (WHERE part = 1),
               string_agg(format({{range}}, to_char(first, 'YYYY-MM-DD'), to_char(last, 'YYYY-MM-DD'),
                                 to_char(last + 1, 'YYYY-MM-DD')), ' OR ') FILTER (WHERE part = 2)
        INTO whole_scope, keyed_scope
        FROM (SELECT part, min(day) AS first, max(day) AS last
              FROM (SELECT part, day, day - (row_number() OVER (PARTITION BY part ORDER BY day))::int AS run
                    FROM (SELECT 1 AS part, day FROM unnest(whole) AS day
                          UNION ALL
                          SELECT 2, day FROM unnest(keyed) AS day WHERE cardinality(keys) > 0) AS days
                    WHERE day IS NOT NULL) AS numbered
              GROUP BY part, run) AS runs;
        IF keyed_scope IS NOT NULL THEN
            keyed_scope := '((' || keyed_scope || ') AND ' || {{key}} || ' = ANY ($1))';
        END IF;
        scope := concat_ws(' OR ', whole_scope, keyed_scope);
        IF scope = '' THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY EXECUTE replace({{definition}}, {{marker}}, '(' || scope || ')') USING keys;
END
$live$;
