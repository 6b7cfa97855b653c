-- The file journal: every file of every source, and where it stands.
-- LISTED → FETCHED → LOADED (rows in the lake) → COMMITTED (consumers served), or REJECTED / DUPLICATE.
CREATE TABLE ingest_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    layout TEXT NOT NULL,
    path TEXT,
    size BIGINT,
    sha256 TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    duplicate_of BIGINT,
    commit_id TEXT,
    rows_read BIGINT NOT NULL DEFAULT 0,
    rows_loaded BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    quarantined BIGINT NOT NULL DEFAULT 0,
    took_ms BIGINT NOT NULL DEFAULT 0,
    replays BIGINT NOT NULL DEFAULT 0,
    listed_at_ms BIGINT NOT NULL,
    fetched_at_ms BIGINT,
    loaded_at_ms BIGINT,
    committed_at_ms BIGINT,
    UNIQUE (source, name)
);
CREATE INDEX ingest_files_sha256 ON ingest_files (sha256);
CREATE INDEX ingest_files_state ON ingest_files (state);

-- Which consumer has been handed which committed file's aggregates.
CREATE TABLE ingest_deliveries (
    file_id BIGINT NOT NULL REFERENCES ingest_files (id),
    batch_key TEXT NOT NULL,
    consumer TEXT NOT NULL,
    delivered_at_ms BIGINT NOT NULL,
    PRIMARY KEY (batch_key, consumer)
);

-- The built-in consumer's inbox and its effect: per-line daily usage counters.
CREATE TABLE ingest_inbox (
    batch_key TEXT NOT NULL,
    consumer TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL,
    PRIMARY KEY (batch_key, consumer)
);
CREATE TABLE ingest_line_daily (
    line TEXT NOT NULL,
    day TEXT NOT NULL,
    voice_out_s BIGINT NOT NULL DEFAULT 0,
    voice_in_s BIGINT NOT NULL DEFAULT 0,
    sms_out BIGINT NOT NULL DEFAULT 0,
    sms_in BIGINT NOT NULL DEFAULT 0,
    data_up_bytes BIGINT NOT NULL DEFAULT 0,
    data_down_bytes BIGINT NOT NULL DEFAULT 0,
    vas_events BIGINT NOT NULL DEFAULT 0,
    charges_e4 BIGINT NOT NULL DEFAULT 0,
    topups BIGINT NOT NULL DEFAULT 0,
    topup_e4 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (line, day)
);

-- Alerts: missing files, batches over their time budget, rejected files.
CREATE TABLE ingest_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    subject TEXT,
    resolved_at_ms BIGINT,
    UNIQUE (source, kind, subject)
);
