-- The worker's own bookkeeping.

-- One row per refresh attempt, written whatever its outcome. Freshness
-- (last success, staleness) is read back from here after a restart.
CREATE TABLE tally.refresh_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    aggregate      text NOT NULL,
    mode           text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    outcome        text NOT NULL
                   CHECK (outcome IN ('success', 'failure', 'skipped_running', 'locked_elsewhere')),
    rows           bigint,
    days_refreshed integer,
    error          text,
    worker         text                    -- host:pid of the process that ran it
);

CREATE INDEX refresh_runs_aggregate_started_at_idx ON tally.refresh_runs (aggregate, started_at DESC);
CREATE INDEX refresh_runs_success_idx ON tally.refresh_runs (aggregate, started_at DESC)
    WHERE outcome = 'success';

-- What partition maintenance did, newest last.
CREATE TABLE tally.partition_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    parent     text NOT NULL,              -- e.g. marketing.events
    partition  text NOT NULL,              -- e.g. marketing.events_p2026_11
    action     text NOT NULL,              -- create, ...
    detail     text
);
