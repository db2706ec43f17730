-- Shared marks (docs/incremental.md, "Shared marks"): a statement that
-- dirties the same days of several aggregates (their rule is the same: one
-- column of one table, one zone) writes one mark for all of them, owned by
-- `members` instead of `aggregate`. Before a refresh, a short transaction
-- turns shared marks into each member's own (sql/incremental/distribute.sql).
-- Writers then pay for one mark per statement, whatever the number of
-- aggregates.
-- NOT VALID: every existing row has an aggregate and no members, so it
-- meets the check; rows written from now on are checked all the same, and
-- the table is not scanned under a lock that blocks writers.
ALTER TABLE tally.invalidations ADD COLUMN members text[];
-- A shared mark has no single aggregate. Only tally reads this table, and
-- this release's distribution, live views and backlog read both owners.
-- squawk-ignore ban-drop-not-null
ALTER TABLE tally.invalidations ALTER COLUMN aggregate DROP NOT NULL;
ALTER TABLE tally.invalidations
    ADD CONSTRAINT invalidations_owner_check
    CHECK ((aggregate IS NULL) <> (members IS NULL) AND (members IS NULL OR array_ndims(members) = 1)) NOT VALID;
