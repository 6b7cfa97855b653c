//! Sign-in attempts per client address per minute, in memory (each instance counts its own;
//! the per-account lockout in the store holds across instances).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// A fixed one-minute window per address.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// At most `per_minute` attempts per address per minute.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: per_minute.max(1), windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one attempt from `addr`; `Err(seconds)` to wait when over the limit.
    pub fn check(&self, addr: IpAddr, now: DateTime<Utc>) -> Result<(), u64> {
        let minute = now.timestamp() / 60;
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(addr).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_minute {
            Err(u64::try_from(60 - now.timestamp().rem_euclid(60)).unwrap_or(60))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn the_limit_applies_per_address_and_resets_each_minute() {
        let l = super::RateLimiter::new(2);
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 10).unwrap();
        let a = "10.0.0.1".parse().unwrap();
        assert!(l.check(a, t).is_ok() && l.check(a, t).is_ok());
        assert_eq!(l.check(a, t), Err(50));
        assert!(l.check("10.0.0.2".parse().unwrap(), t).is_ok());
        assert!(l.check(a, t + chrono::Duration::minutes(1)).is_ok());
    }
}
