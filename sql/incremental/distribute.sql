-- Shared marks become each member's own before a refresh (one statement,
-- its own transaction): a writer's statement wrote one mark for every
-- aggregate with the same rule; here it becomes one per member, and the
-- identical ones (a thousand single-row INSERTs of one day) one mark.
WITH moved AS (
    DELETE FROM tally.invalidations WHERE members IS NOT NULL
    RETURNING members, kind, first_day, last_day, lead_id, via, keys)
INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day, lead_id, via, keys)
SELECT DISTINCT m.member, moved.kind, moved.first_day, moved.last_day, moved.lead_id, moved.via, moved.keys
FROM moved CROSS JOIN LATERAL unnest(moved.members) AS m(member)
