-- A lead whose source, campaign or user changes dirties its conversions' days.
INSERT INTO tally.invalidations (aggregate, kind, lead_id)
SELECT DISTINCT {{aggregate}}, 'lead', n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id
WHERE (o.source, o.campaign, o.user_id) IS DISTINCT FROM (n.source, n.campaign, n.user_id);
