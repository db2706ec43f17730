-- An invalidation trigger function: runs once per statement on a source
-- table and appends a few marks to tally.invalidations, whatever the number
-- of rows written. {{body}}: the marks (sql/incremental/marks/).
CREATE OR REPLACE FUNCTION {{function}}() RETURNS trigger LANGUAGE plpgsql AS $tally$
BEGIN
    {{body}}
    RETURN NULL;
END
$tally$
