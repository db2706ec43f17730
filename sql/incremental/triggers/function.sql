-- An invalidation trigger function: runs once per statement on a source
-- table and appends a few marks to tally.invalidations, whatever the number
-- of rows written. {{body}}: the marks (sql/incremental/marks/).
-- SECURITY DEFINER (owned by tally's role, every name qualified): an
-- application that writes events needs no right in tally, and cannot write
-- marks itself.
CREATE OR REPLACE FUNCTION {{function}}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $tally$
BEGIN
    {{body}}
    RETURN NULL;
END
$tally$
