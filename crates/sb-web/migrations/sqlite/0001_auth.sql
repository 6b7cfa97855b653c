-- Back-office users. Passwords are argon2id PHC strings; never the password itself.
CREATE TABLE web_users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BIGINT NOT NULL DEFAULT 1,
    disabled BIGINT NOT NULL DEFAULT 0,
    failed_sign_ins BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    password_changed_at_ms BIGINT,
    last_sign_in_at_ms BIGINT
);

-- Sign-in sessions, by the SHA-256 of the cookie's random token (a stolen table opens nothing).
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES web_users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_seen_at_ms BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- API clients: the key's secret part is stored as SHA-256 only and shown once.
CREATE TABLE web_api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT,
    last_used_at_ms BIGINT
);
