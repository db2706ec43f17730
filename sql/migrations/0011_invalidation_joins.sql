-- Aggregates declared in the config (docs/your-aggregates.md) may join
-- other tables to their fact table by an equality of columns. A write to
-- such a table records a `join` mark: `keys` holds the join key values of
-- its rows, `via` the fact table's column they are values of, and the
-- claim turns them into the days of the fact rows holding them (so a fact
-- row committed after the write is seen).
-- NOT VALID: every existing row meets the new checks (no row has kind
-- 'join'), rows written from now on are checked all the same, and the table
-- is not scanned under a lock that blocks writers.
-- The two checks dropped here are replaced, in the same transaction, by
-- wider ones (one more kind): no guarantee a reader relies on is lost.
ALTER TABLE tally.invalidations ADD COLUMN via text;
-- squawk-ignore ban-drop-constraint
ALTER TABLE tally.invalidations DROP CONSTRAINT invalidations_kind_check;
ALTER TABLE tally.invalidations
    ADD CONSTRAINT invalidations_kind_check
    CHECK (kind IN ('days', 'touch_window', 'lead', 'all', 'join')) NOT VALID;
-- squawk-ignore ban-drop-constraint
ALTER TABLE tally.invalidations DROP CONSTRAINT invalidations_keys_check;
ALTER TABLE tally.invalidations
    ADD CONSTRAINT invalidations_keys_check
    CHECK (keys IS NULL OR (kind IN ('days', 'touch_window', 'join') AND array_ndims(keys) = 1)) NOT VALID;
ALTER TABLE tally.invalidations
    ADD CONSTRAINT invalidations_join_check
    CHECK (kind <> 'join' OR (via IS NOT NULL AND keys IS NOT NULL)) NOT VALID;
