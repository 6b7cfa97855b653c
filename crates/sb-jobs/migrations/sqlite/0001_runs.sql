-- Every run of every job: scheduled, caught up, manual or skipped.
CREATE TABLE jobs_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_for_ms BIGINT,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    status TEXT NOT NULL,
    counters TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    instance TEXT NOT NULL,
    -- A schedule slot runs at most once, whichever instance claims it. Manual runs have no slot.
    UNIQUE (job, scheduled_for_ms)
);
CREATE INDEX jobs_runs_job_started ON jobs_runs (job, started_at_ms);

-- The newest schedule slot each job has handled (run, caught up or skipped).
CREATE TABLE jobs_state (
    job TEXT PRIMARY KEY,
    last_slot_ms BIGINT NOT NULL
);

-- SQLite has no advisory locks: a lease row per running job stands in for one.
CREATE TABLE jobs_leases (
    job TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
