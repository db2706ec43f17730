-- The hot path (INSERT and DELETE, e.g. ingest): one pass over the
-- transition table per day column, grouped by day, emitting a mark per day
-- for every rule on that column ({{marks}}: VALUES rows of (aggregate,
-- members, kind, first_day, last_day) over dirty.d and dirty.last_touch;
-- aggregates with the same rule share one mark, owned by members).
INSERT INTO tally.invalidations (aggregate, members, kind, first_day, last_day)
SELECT m.aggregate, m.members, m.kind, m.first_day, m.last_day
FROM (SELECT {{day}} AS d, {{last_touch}} AS last_touch FROM {{rows}} AS r GROUP BY 1) AS dirty
CROSS JOIN LATERAL (VALUES {{marks}}) AS m(aggregate, members, kind, first_day, last_day)
WHERE m.kind <> 'touch_window' OR dirty.last_touch IS NOT NULL;
