-- One minute of traffic for the declared whole cycle: 5,000 page views in
-- the last minute and 20 late ones three days back (a client flushing its
-- queue). {{run}} makes each run's visitors its own.
INSERT INTO web.pageviews (website_id, url_path, referrer, visitor_id, ts)
SELECT 1 + g % 20, '/p/' || (g % 200), (ARRAY['google', 'bing', NULL])[1 + g % 3],
       md5('minute-{{run}}-' || (g / 3))::uuid, now() - (g % 60) * interval '1 second'
FROM generate_series(0, 4999) AS g;
INSERT INTO web.pageviews (website_id, url_path, referrer, visitor_id, ts)
SELECT 1 + g % 20, '/late', 'app', md5('late-{{run}}-' || g)::uuid, now() - interval '3 days' + g * interval '1 minute'
FROM generate_series(1, 20) AS g;
