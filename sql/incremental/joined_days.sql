-- The days of the fact rows a `join` mark names: the rows of {{fact}} whose
-- {{column}} holds one of the mark's key values ({{via}}: the column's name
-- as a literal; {{day}}: the day of fact row f). A key value is read back as
-- the column's own type through the fact table's row type, so the
-- comparison uses the column's index.
    UNION
    SELECT {{day}}
    FROM {{marks}} CROSS JOIN LATERAL unnest({{marks}}.keys) AS u(key)
    JOIN {{fact}} AS f
      ON f.{{column}} = (json_populate_record(NULL::{{fact}}, json_build_object({{via}}, u.key))).{{column}}
    WHERE {{marks}}.kind = 'join' AND {{marks}}.via = {{via}}
