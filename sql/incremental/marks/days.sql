-- A write dirties the days of its rows ({{day}}: the day of row r), for
-- one aggregate ({{aggregate}}) or for several alike ({{members}}: a shared mark).
INSERT INTO tally.invalidations (aggregate, members, kind, first_day, last_day)
SELECT {{aggregate}}, {{members}}, 'days', d, d FROM (SELECT DISTINCT {{day}} AS d FROM {{rows}} AS r) AS dirty;
