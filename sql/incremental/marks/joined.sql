-- A write to a table joined to the fact table records the join key values
-- of its rows ({{column}}: the joined table's column; {{via}}: the fact
-- table's column, as a literal); the claim finds the fact rows' days
-- (sql/incremental/joined_days.sql).
INSERT INTO tally.invalidations (aggregate, kind, via, keys)
SELECT {{aggregate}}, 'join', {{via}}, array_agg(DISTINCT k.key)
FROM (SELECT r.{{column}}::text AS key FROM {{rows}} AS r) AS k WHERE k.key IS NOT NULL HAVING count(*) > 0;
