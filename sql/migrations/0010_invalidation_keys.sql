-- Live reads of a day written by small statements recompute only the
-- groups those statements touched (docs/incremental.md, "Keyed marks"):
-- a `days` mark may carry the values of the aggregate's live key (e.g. the
-- campaign) of the rows written. NULL: the whole day. Refreshes ignore it.
ALTER TABLE tally.invalidations ADD COLUMN keys text[];
ALTER TABLE tally.invalidations
    ADD CONSTRAINT invalidations_keys_check CHECK (keys IS NULL OR kind = 'days');
