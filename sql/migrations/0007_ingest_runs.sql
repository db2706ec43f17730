-- One row per `tally ingest` run, updated in the same transaction as each
-- batch it loads, so its counts are exact even after a crash. The worker
-- exports the sums as tally_ingest_rows_total.
CREATE TABLE tally.ingest_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,              -- file name, or '-' for stdin
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'completed', 'interrupted', 'failed')),
    lines       bigint NOT NULL DEFAULT 0,  -- lines read (after any skipped ones)
    loaded      bigint NOT NULL DEFAULT 0,
    duplicate   bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    in_default  bigint NOT NULL DEFAULT 0,  -- loaded rows that landed in a default partition
    last_line   bigint NOT NULL DEFAULT 0   -- every line up to this one is committed
);
