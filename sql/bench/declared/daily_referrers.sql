SELECT (p.ts AT TIME ZONE 'UTC')::date AS day,
       coalesce(p.referrer, '(direct)') AS referrer,
       count(*) AS views,
       count(DISTINCT p.visitor_id) FILTER (WHERE p.url_path LIKE '/p/1%') AS visitors_of_p1
FROM web.pageviews AS p
GROUP BY 1, 2
