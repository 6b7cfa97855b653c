-- Tokens become encrypted row ids (see src/token_id.rs): rows get a never-reused integer id
-- and new rows store no token, only the random salt the token carries beside the id. The `token` column keeps the random tokens made before, with a
-- partial index that new rows do not touch. SQLite cannot change a primary key in place:
-- the table is rebuilt.
CREATE TABLE vault_tokens_new (
    id INTEGER PRIMARY KEY,
    token TEXT,
    salt BIGINT,
    kind TEXT NOT NULL,
    fp_version BIGINT NOT NULL,
    fingerprint BLOB NOT NULL,
    subject_id BIGINT NOT NULL REFERENCES vault_subjects (id),
    value BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (kind, fingerprint)
);
INSERT INTO vault_tokens_new (token, kind, fp_version, fingerprint, subject_id, value, created_at_ms)
    SELECT token, kind, fp_version, fingerprint, subject_id, value, created_at_ms FROM vault_tokens;
DROP TABLE vault_tokens;
ALTER TABLE vault_tokens_new RENAME TO vault_tokens;
CREATE UNIQUE INDEX vault_tokens_legacy_token ON vault_tokens (token) WHERE token IS NOT NULL;
CREATE INDEX vault_tokens_subject ON vault_tokens (subject_id);
CREATE INDEX vault_tokens_fp_version ON vault_tokens (fp_version);

-- The next token row id: ids are handed out from here, in blocks, and never reused.
CREATE TABLE vault_counters (
    name TEXT PRIMARY KEY,
    next_id BIGINT NOT NULL
);
INSERT INTO vault_counters (name, next_id) SELECT 'tokens', COALESCE(MAX(id), 0) + 1 FROM vault_tokens;
-- Bumped by every erasure and retention: processes holding tokens and keys in memory see it and
-- drop them, so a subject destroyed by one process is forgotten by all.
INSERT INTO vault_counters (name, next_id) VALUES ('changes', 0);
