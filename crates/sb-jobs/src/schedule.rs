use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A cron expression: `min hour day-of-month month day-of-week`, with an optional seconds
/// field first; read in the scheduler's timezone.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a cron expression; the error says what form is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cron = Cron::from_str(text.trim()).map_err(|e| {
            format!("`{text}` is not a cron expression ({e}); expected `min hour day month weekday`, e.g. `0 * * * *`")
        })?;
        Ok(Self { text: text.trim().to_owned(), cron })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The newest slot at or before `now`.
    pub fn latest_at_or_before(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&now.with_timezone(&tz), true).ok().map(|t| t.with_timezone(&Utc))
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after.with_timezone(&tz), false).ok().map(|t| t.with_timezone(&Utc))
    }

    /// How many slots fall in `(after, until]`, counting at most `cap`.
    pub fn count_between(&self, after: DateTime<Utc>, until: DateTime<Utc>, tz: Tz, cap: u32) -> u32 {
        let mut n = 0;
        let mut t = after;
        while n < cap {
            match self.next_after(t, tz) {
                Some(next) if next <= until => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({})", self.text)
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn slots_follow_local_time_across_a_daylight_saving_change() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let tz = chrono_tz::Europe::Rome;
        // 2026-10-25: clocks go back at 03:00 CEST; 02:00 local stays the slot, in UTC 01:00 (+01).
        let after = Utc.with_ymd_and_hms(2026, 10, 25, 12, 0, 0).unwrap();
        let next = s.next_after(after, tz).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 10, 26, 1, 0, 0).unwrap());
    }

    #[test]
    fn slots_between_two_instants_are_counted() {
        let s = Schedule::parse("0 * * * *").unwrap();
        let tz = chrono_tz::UTC;
        let a = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let b = Utc.with_ymd_and_hms(2026, 1, 1, 5, 30, 0).unwrap();
        assert_eq!(s.count_between(a, b, tz, 100), 5);
        assert_eq!(s.latest_at_or_before(b, tz), Some(Utc.with_ymd_and_hms(2026, 1, 1, 5, 0, 0).unwrap()));
    }

    #[test]
    fn a_bad_expression_says_what_is_expected() {
        let e = Schedule::parse("every hour").unwrap_err();
        assert!(e.contains("`every hour`") && e.contains("min hour day month weekday"), "{e}");
    }
}
