-- Marks of small statements are narrower (docs/incremental.md, "Keyed
-- marks"): a `days` mark may carry the values of the aggregate's live key
-- (e.g. the campaign) of the rows written, and a `touch_window` mark the
-- user_ids of the touches written. NULL: the whole day, or every
-- conversion in the window.
-- NOT VALID: the column is new, so every existing row holds NULL and meets
-- the check; rows written from now on are checked all the same, and the
-- table is not scanned under a lock that blocks writers.
ALTER TABLE tally.invalidations ADD COLUMN keys text[];
ALTER TABLE tally.invalidations
    ADD CONSTRAINT invalidations_keys_check
    CHECK (keys IS NULL OR (kind IN ('days', 'touch_window') AND array_ndims(keys) = 1)) NOT VALID;
