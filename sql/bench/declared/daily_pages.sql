SELECT (p.ts AT TIME ZONE 'UTC')::date AS day,
       p.website_id,
       p.url_path,
       count(*) AS views,
       count(DISTINCT p.visitor_id) AS visitors
FROM web.pageviews AS p
GROUP BY 1, 2, 3
