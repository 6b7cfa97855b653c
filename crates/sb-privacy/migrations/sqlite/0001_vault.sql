-- Root keys, each wrapped by the master key. 'root' versions rotate; 'deterministic' does not.
CREATE TABLE vault_keyring (
    purpose TEXT NOT NULL,
    version BIGINT NOT NULL,
    wrapped BLOB,
    master_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    retired_at_ms BIGINT,
    PRIMARY KEY (purpose, version)
);

-- Whose data it is. A subject's data key encrypts its values; erasure destroys the key and
-- unlinks the row from the customer (ref set to NULL).
CREATE TABLE vault_subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ref TEXT,
    key_version BIGINT,
    wrapped_key BLOB,
    created_at_ms BIGINT NOT NULL,
    erased_at_ms BIGINT,
    UNIQUE (kind, ref)
);
CREATE INDEX vault_subjects_key_version ON vault_subjects (key_version);

-- Token ↔ value. The value is encrypted under its subject's key; the fingerprint (keyed HMAC
-- of the value) finds an existing token without storing the value in clear.
CREATE TABLE vault_tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    fp_version BIGINT NOT NULL,
    fingerprint BLOB NOT NULL,
    subject_id BIGINT NOT NULL REFERENCES vault_subjects (id),
    value BLOB NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (kind, fingerprint)
);
CREATE INDEX vault_tokens_subject ON vault_tokens (subject_id);
CREATE INDEX vault_tokens_fp_version ON vault_tokens (fp_version);

-- Every reveal, refusal, erasure, retention and rotation; each entry's MAC covers the one before.
CREATE TABLE vault_audit (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT,
    target TEXT,
    purpose TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL
);

-- The newest entry of the chain, updated with each append: a deleted tail shows.
CREATE TABLE vault_audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    mac TEXT NOT NULL
);

-- Receipts of erasure requests.
CREATE TABLE vault_erasures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_ref TEXT NOT NULL UNIQUE,
    requested_by TEXT NOT NULL,
    completed_at_ms BIGINT NOT NULL,
    subjects_destroyed BIGINT NOT NULL,
    tokens_destroyed BIGINT NOT NULL,
    audit_seq BIGINT NOT NULL
);

INSERT INTO vault_audit_head (id, seq, mac) VALUES (1, 0, 'genesis');
