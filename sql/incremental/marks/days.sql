-- A write dirties the days of its rows ({{day}}: the day of row r).
INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day)
SELECT {{aggregate}}, 'days', d, d FROM (SELECT DISTINCT {{day}} AS d FROM {{rows}} AS r) AS dirty;
