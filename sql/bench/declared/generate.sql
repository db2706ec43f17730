-- {{rows}} page views over the {{days}} days before now, on 20 websites of
-- 5 owners, 200 paths, 12 referrers (and none), visitors returning.
INSERT INTO web.websites SELECT n, 'owner-' || (n % 5) FROM generate_series(1, 20) AS n;
INSERT INTO web.pageviews (website_id, url_path, referrer, visitor_id, ts)
SELECT 1 + g % 20,
       '/p/' || ((g * 7919) % 200),
       (ARRAY['google', 'bing', 'twitter', 'news', 'hn', 'reddit', 'mail', 'partner', 'ads', 'blog', 'docs', 'app', NULL])[1 + (g * 31) % 13],
       md5(((g * 104729) % greatest({{rows}} / 20, 1))::text)::uuid,
       now() - (g::float8 / {{rows}}) * {{days}} * interval '1 day'
FROM generate_series(1::bigint, {{rows}}) AS g;
CREATE INDEX ON web.pageviews (ts);
CREATE INDEX ON web.pageviews (website_id);
