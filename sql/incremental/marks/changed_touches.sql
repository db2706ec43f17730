(SELECT o.* FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
  WHERE (o.user_id, o.utm_source, o.utm_campaign, o.occurred_at) IS DISTINCT FROM (n.user_id, n.utm_source, n.utm_campaign, n.occurred_at)
 UNION ALL
 SELECT n.* FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id
  WHERE (o.user_id, o.utm_source, o.utm_campaign, o.occurred_at) IS DISTINCT FROM (n.user_id, n.utm_source, n.utm_campaign, n.occurred_at))
