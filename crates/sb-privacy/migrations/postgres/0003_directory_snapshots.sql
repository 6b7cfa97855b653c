-- The vault's directory (src/known.rs) saved in parts, so that a new process reads a kind's
-- fingerprints and token bodies in a few rows instead of one row per token. A part is valid
-- only under the change generation, fingerprint version and token-id key it was saved with;
-- erasure and rotation delete every part.
CREATE TABLE vault_directory_parts (
    kind TEXT NOT NULL,
    part BIGINT NOT NULL,
    parts BIGINT NOT NULL,
    high_water BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    fp_version BIGINT NOT NULL,
    key_check BYTEA NOT NULL,
    entries BYTEA NOT NULL,
    PRIMARY KEY (kind, part)
);
