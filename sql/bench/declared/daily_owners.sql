SELECT (p.ts AT TIME ZONE 'UTC')::date AS day,
       w.owner,
       count(*) AS views,
       count(DISTINCT p.visitor_id) AS visitors
FROM web.pageviews AS p
JOIN web.websites AS w ON w.id = p.website_id
GROUP BY 1, 2
