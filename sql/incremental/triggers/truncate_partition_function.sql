-- TRUNCATE of one monthly partition of marketing.events dirties its month:
-- the trigger passes the partition's bounds (read from the catalog) as its
-- two arguments. Without them (the default partition) everything is dirty.
CREATE OR REPLACE FUNCTION {{function}}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $tally$
DECLARE lower timestamptz; upper timestamptz;
BEGIN
    IF TG_NARGS < 2 THEN
        {{everything}}
        RETURN NULL;
    END IF;
    lower := TG_ARGV[0]::timestamptz;
    upper := TG_ARGV[1]::timestamptz;
    {{marks}}
    RETURN NULL;
END
$tally$
