//! Per-line, per-day totals of a file, for the consumers.
//!
//! A file of a large operator touches millions of lines, so the totals are kept small while
//! the file loads (the line's token is shared with the vault's cache, top-ups take room only
//! for lines that have some) and become [`LineUsage`] values one at a time, as the outbox is
//! written.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use sb_core::{LineUsage, TopupChannel, Topups, UsageKind};

use crate::rows::Row;

const CHANNELS: usize = TopupChannel::ALL.len();

/// One line's sums on one day.
#[derive(Default)]
struct Totals {
    voice_out_s: i64,
    voice_in_s: i64,
    sms_out: i64,
    sms_in: i64,
    data_up_bytes: i64,
    data_down_bytes: i64,
    vas_events: i64,
    charges_e4: i64,
    /// By channel, in [`TopupChannel::ALL`] order.
    topups: Option<Box<[Topups; CHANNELS]>>,
}

/// Sums records per (line token, day).
#[derive(Default)]
pub struct Aggregator {
    lines: HashMap<(Arc<str>, NaiveDate), Totals>,
}

impl Aggregator {
    /// Adds one loaded record.
    pub fn add(&mut self, line: &Arc<str>, day: NaiveDate, r: &Row) {
        let u = self.lines.entry((Arc::clone(line), day)).or_default();
        match r.kind {
            UsageKind::VoiceMo => u.voice_out_s += r.duration_s,
            UsageKind::VoiceMt => u.voice_in_s += r.duration_s,
            UsageKind::SmsMo => u.sms_out += 1,
            UsageKind::SmsMt => u.sms_in += 1,
            UsageKind::Data => {
                u.data_up_bytes += r.up_bytes;
                u.data_down_bytes += r.down_bytes;
            }
            UsageKind::Vas => u.vas_events += 1,
            UsageKind::Topup | UsageKind::TopupAuto => {
                if let Some(ch) = r.channel {
                    let slot = TopupChannel::ALL.iter().position(|c| *c == ch).expect("every channel is listed");
                    let t = &mut u.topups.get_or_insert_with(Default::default)[slot];
                    t.count += 1;
                    t.amount_e4 += r.charge_e4;
                }
                return;
            }
        }
        u.charges_e4 += r.charge_e4;
    }

    /// The totals, sorted by line and day (deterministic deliveries, and the order
    /// [`delta`] relies on).
    pub fn finish(self) -> Aggregates {
        let mut v: Vec<_> = self.lines.into_iter().collect();
        v.sort_unstable_by(|a, b| (&a.0.0, a.0.1).cmp(&(&b.0.0, b.0.1)));
        Aggregates(v)
    }
}

/// A file's totals, sorted by line and day.
pub struct Aggregates(Vec<((Arc<str>, NaiveDate), Totals)>);

impl Aggregates {
    /// Each line and day as the consumers see it, made as it is asked for.
    pub fn iter(&self) -> impl Iterator<Item = LineUsage> + '_ {
        self.0.iter().map(|((line, day), t)| LineUsage {
            line: line.to_string(),
            date: Some(*day),
            voice_out_s: t.voice_out_s,
            voice_in_s: t.voice_in_s,
            sms_out: t.sms_out,
            sms_in: t.sms_in,
            data_up_bytes: t.data_up_bytes,
            data_down_bytes: t.data_down_bytes,
            vas_events: t.vas_events,
            charges_e4: t.charges_e4,
            topups: t
                .topups
                .as_deref()
                .map(|by| {
                    TopupChannel::ALL
                        .iter()
                        .zip(by)
                        .filter(|(_, t)| t.count != 0 || t.amount_e4 != 0)
                        .map(|(c, t)| (*c, *t))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

fn key(u: &LineUsage) -> (&str, Option<NaiveDate>) {
    (&u.line, u.date)
}

fn is_zero(u: &LineUsage) -> bool {
    u.voice_out_s == 0
        && u.voice_in_s == 0
        && u.sms_out == 0
        && u.sms_in == 0
        && u.data_up_bytes == 0
        && u.data_down_bytes == 0
        && u.vas_events == 0
        && u.charges_e4 == 0
        && u.topups.values().all(|t| t.count == 0 && t.amount_e4 == 0)
}

fn subtract(mut e: LineUsage, o: &LineUsage) -> LineUsage {
    e.voice_out_s -= o.voice_out_s;
    e.voice_in_s -= o.voice_in_s;
    e.sms_out -= o.sms_out;
    e.sms_in -= o.sms_in;
    e.data_up_bytes -= o.data_up_bytes;
    e.data_down_bytes -= o.data_down_bytes;
    e.vas_events -= o.vas_events;
    e.charges_e4 -= o.charges_e4;
    for (ch, t) in &o.topups {
        let x = e.topups.entry(*ch).or_default();
        x.count -= t.count;
        x.amount_e4 -= t.amount_e4;
    }
    e
}

/// `new − old`, per line and day: what a replay changes for consumers. Both sides come sorted
/// by line and day (as [`Aggregator::finish`] and the outbox give them), so the difference is
/// a merge that holds one entry of each side at a time.
pub fn delta<E>(
    old: impl Iterator<Item = Result<LineUsage, E>>,
    new: impl Iterator<Item = Result<LineUsage, E>>,
) -> impl Iterator<Item = Result<LineUsage, E>> {
    let mut old = old.peekable();
    let mut new = new.peekable();
    std::iter::from_fn(move || {
        loop {
            let order = match (old.peek(), new.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return old.next(),
                (_, Some(Err(_))) => return new.next(),
                (Some(Ok(_)), None) => Ordering::Less,
                (None, Some(Ok(_))) => Ordering::Greater,
                (Some(Ok(o)), Some(Ok(n))) => key(o).cmp(&key(n)),
            };
            let out = match order {
                Ordering::Greater => new.next().and_then(Result::ok).expect("peeked"),
                Ordering::Less => {
                    let o = old.next().and_then(Result::ok).expect("peeked");
                    subtract(LineUsage { line: o.line.clone(), date: o.date, ..LineUsage::default() }, &o)
                }
                Ordering::Equal => {
                    let o = old.next().and_then(Result::ok).expect("peeked");
                    subtract(new.next().and_then(Result::ok).expect("peeked"), &o)
                }
            };
            if !is_zero(&out) {
                return Some(Ok(out));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(line: &str, day: u32, sms_out: i64, topup: Option<(TopupChannel, i64)>) -> LineUsage {
        LineUsage {
            line: line.into(),
            date: NaiveDate::from_ymd_opt(2026, 11, day),
            sms_out,
            topups: topup.map(|(c, a)| (c, Topups { count: 1, amount_e4: a })).into_iter().collect(),
            ..LineUsage::default()
        }
    }

    fn run(old: Vec<LineUsage>, new: Vec<LineUsage>) -> Vec<LineUsage> {
        delta::<()>(old.into_iter().map(Ok), new.into_iter().map(Ok)).map(Result::unwrap).collect()
    }

    #[test]
    fn the_delta_of_a_replay_adds_what_is_new_and_takes_back_what_is_gone() {
        let old = vec![usage("a", 1, 2, None), usage("b", 1, 1, None), usage("c", 2, 5, Some((TopupChannel::App, 10)))];
        let new = vec![usage("a", 1, 3, None), usage("b", 2, 1, None), usage("c", 2, 5, Some((TopupChannel::App, 10)))];
        let d = run(old, new);
        // a/1 grew by one; b moved from day 1 to day 2; c is unchanged and not sent.
        assert_eq!(d.len(), 3, "{d:?}");
        assert_eq!((d[0].line.as_str(), d[0].sms_out), ("a", 1));
        assert_eq!(
            (d[1].line.as_str(), d[1].date.unwrap().to_string().as_str(), d[1].sms_out),
            ("b", "2026-11-01", -1)
        );
        assert_eq!((d[2].line.as_str(), d[2].date.unwrap().to_string().as_str(), d[2].sms_out), ("b", "2026-11-02", 1));
    }

    #[test]
    fn a_read_error_on_either_side_is_passed_on() {
        let old: Vec<Result<LineUsage, &str>> = vec![Err("broken")];
        let new: Vec<Result<LineUsage, &str>> = vec![Ok(usage("a", 1, 1, None))];
        let out: Vec<_> = delta(old.into_iter(), new.into_iter()).collect();
        assert_eq!(out.first().map(|r| r.is_err()), Some(true));
    }
}
