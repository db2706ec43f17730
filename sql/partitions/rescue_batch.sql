-- Rescue, step 2: moves one batch of a month's rows out of the default
-- partition into the month's standalone table, in one statement (a row is in
-- exactly one place at every commit). Keyset pagination on (partition key,
-- tiebreaker): $1 the last key moved (NULL at the start), $2 the last
-- tiebreaker (text), $3 the batch size. Returns the rows moved and the new
-- position. {{default}}, {{partition}}: quoted tables; {{key}}: the quoted
-- partition key; {{from}}, {{to}}: the month's bounds (timestamptz
-- literals); {{tiebreaker}}: `id` (quoted) or ctid, of type {{tiebreaker_type}};
-- {{columns}}, {{returning}}: the stored columns (bare, and prefixed `d.`).
WITH batch AS (
    SELECT ctid AS row_ctid FROM {{default}}
    WHERE {{key}} >= {{from}} AND {{key}} < {{to}}
      AND {{key}} >= coalesce($1::timestamptz, '-infinity')
      AND ({{key}}, {{tiebreaker}}) > (coalesce($1::timestamptz, '-infinity'), $2::{{tiebreaker_type}})
    ORDER BY {{key}}, {{tiebreaker}} LIMIT $3 FOR UPDATE SKIP LOCKED),
moved AS (
    DELETE FROM {{default}} AS d USING batch WHERE d.ctid = batch.row_ctid
    RETURNING d.{{tiebreaker}} AS keyset_tiebreaker, {{returning}}),
inserted AS (
    INSERT INTO {{partition}} ({{columns}}) SELECT {{columns}} FROM moved RETURNING 1)
SELECT (SELECT count(*) FROM inserted), last.k, last.t
FROM (SELECT 1) AS one
LEFT JOIN (SELECT {{key}} AS k, keyset_tiebreaker::text AS t FROM moved
           ORDER BY {{key}} DESC, keyset_tiebreaker DESC LIMIT 1) AS last ON true
