-- Master data from the operator's database, as type-2 history: one row per version, the
-- current one with valid_to_ms NULL. Personal fields hold their protected form (token,
-- encrypted `enc1.…` or generalised value, per the privacy policy), never cleartext.
-- row_hash is a keyed HMAC of the source row: it detects changes without storing the values.
CREATE TABLE master_customers (
    customer_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    customer_type TEXT,
    name TEXT,
    birth_date TEXT,
    tax_code TEXT,
    iban TEXT,
    address TEXT,
    province TEXT,
    email TEXT,
    row_hash TEXT NOT NULL,
    valid_from_ms BIGINT NOT NULL,
    valid_to_ms BIGINT,
    PRIMARY KEY (customer_id, version)
);
CREATE UNIQUE INDEX master_customers_current ON master_customers (customer_id) WHERE valid_to_ms IS NULL;

CREATE TABLE master_lines (
    line_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    customer_id TEXT,
    msisdn TEXT,
    imsi TEXT,
    imei TEXT,
    plan_code TEXT,
    payment_type TEXT,
    status TEXT,
    activated_on TEXT,
    row_hash TEXT NOT NULL,
    valid_from_ms BIGINT NOT NULL,
    valid_to_ms BIGINT,
    PRIMARY KEY (line_id, version)
);
CREATE UNIQUE INDEX master_lines_current ON master_lines (line_id) WHERE valid_to_ms IS NULL;
CREATE INDEX master_lines_msisdn ON master_lines (msisdn);
CREATE INDEX master_lines_customer ON master_lines (customer_id);

CREATE TABLE master_plans (
    plan_code TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT,
    payment_type TEXT,
    monthly_fee_cents BIGINT,
    row_hash TEXT NOT NULL,
    valid_from_ms BIGINT NOT NULL,
    valid_to_ms BIGINT,
    PRIMARY KEY (plan_code, version)
);
CREATE UNIQUE INDEX master_plans_current ON master_plans (plan_code) WHERE valid_to_ms IS NULL;

-- Per dimension: bumped by every change; the lake copy is rewritten until it has caught up.
CREATE TABLE master_state (
    dimension TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    exported_revision BIGINT NOT NULL
);
