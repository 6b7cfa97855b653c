-- Calls to outside systems, per minute, system and method (from the monitoring bus).
CREATE TABLE monitor_rollups (
    minute_ms BIGINT NOT NULL,
    system TEXT NOT NULL,
    method TEXT NOT NULL,
    calls BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    timeouts BIGINT NOT NULL,
    cache_hits BIGINT NOT NULL,
    cache_misses BIGINT NOT NULL,
    cache_stale BIGINT NOT NULL,
    latency_sum_us BIGINT NOT NULL,
    latency_max_us BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, system, method)
);

-- The latency histogram of each rollup: calls per logarithmic bucket (see histogram.rs),
-- so that percentiles can be computed over any range of minutes.
CREATE TABLE monitor_latency (
    minute_ms BIGINT NOT NULL,
    system TEXT NOT NULL,
    method TEXT NOT NULL,
    bucket BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (minute_ms, system, method, bucket)
);

-- The newest bus message applied by each consumer, written with the rollups it produced,
-- so a redelivered message is not counted twice.
CREATE TABLE monitor_consumers (
    name TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
