-- Changes about 1% of the page views of one UTC day ($1), at least one: a
-- path rewritten, as a late data fix would.
WITH the_day AS (
    SELECT id, ts FROM web.pageviews
    WHERE ts >= $1::date::timestamp AT TIME ZONE 'UTC' AND ts < ($1::date + 1)::timestamp AT TIME ZONE 'UTC')
UPDATE web.pageviews AS p SET url_path = p.url_path || '?fixed'
FROM the_day AS d
WHERE p.id = d.id AND p.ts = d.ts AND (d.id % 100 = 0 OR d.id = (SELECT min(id) FROM the_day))
