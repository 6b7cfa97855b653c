use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CatchUp, Schedule};

/// The `[jobs]` section of `switchboard.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Timezone in which schedules are read (an IANA name such as `Europe/Rome`), so
    /// `0 2 * * *` means 02:00 local time across daylight-saving changes.
    pub timezone: chrono_tz::Tz,
    /// A slot this recent (seconds) counts as on time; older ones were missed during
    /// downtime and follow the job's catch-up policy.
    pub grace_s: u64,
    /// Longest pause between two looks at the schedule, in seconds.
    pub poll_s: u64,
    /// Days of run history kept by the `housekeeping` job.
    pub history_days: u32,
    /// Per-job changes to the built-in schedule, catch-up, timeout, or to disable a job:
    /// `[jobs.overrides.housekeeping]` then `schedule = "0 4 * * *"`.
    pub overrides: BTreeMap<String, JobOverride>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            timezone: chrono_tz::Europe::Rome,
            grace_s: 300,
            poll_s: 30,
            history_days: 90,
            overrides: BTreeMap::new(),
        }
    }
}

/// Settings that replace a job's built-in ones; unset fields keep the built-in value.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobOverride {
    /// A cron expression (`min hour day month weekday`, optional seconds first).
    pub schedule: Option<Schedule>,
    /// `once` (run one missed slot after downtime) or `skip`.
    pub catch_up: Option<CatchUp>,
    /// Longest run, in seconds, before the run is stopped and recorded as timed out.
    pub timeout_s: Option<u64>,
    /// `false` keeps the job out of the schedule (it can still be run by hand).
    pub enabled: Option<bool>,
}
