-- The join key values of an UPDATE that can change what joins, for a rule
-- that watches only some columns ({{column}}: the joined table's key
-- column; {{old}}, {{new}}: the watched columns of o and n): rows whose
-- watched columns changed, and keys that appeared or went away.
(SELECT n.{{column}} FROM new_rows AS n JOIN old_rows AS o ON o.{{column}} = n.{{column}}
  WHERE ({{old}}) IS DISTINCT FROM ({{new}})
 UNION ALL
 SELECT o.{{column}} FROM old_rows AS o WHERE NOT EXISTS (SELECT FROM new_rows AS n WHERE n.{{column}} = o.{{column}})
 UNION ALL
 SELECT n.{{column}} FROM new_rows AS n WHERE NOT EXISTS (SELECT FROM old_rows AS o WHERE o.{{column}} = n.{{column}}))
