//! Per-line, per-day totals of a file, for the consumers.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use sb_core::{LineUsage, UsageKind};

use crate::rows::Row;

/// Sums records per (line token, day).
#[derive(Default)]
pub struct Aggregator {
    lines: HashMap<(Arc<str>, NaiveDate), LineUsage>,
}

impl Aggregator {
    /// Adds one loaded record.
    pub fn add(&mut self, line: &Arc<str>, day: NaiveDate, r: &Row) {
        let u = self.lines.entry((Arc::clone(line), day)).or_insert_with(|| LineUsage {
            line: line.to_string(),
            date: Some(day),
            ..LineUsage::default()
        });
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
                    let t = u.topups.entry(ch).or_default();
                    t.count += 1;
                    t.amount_e4 += r.charge_e4;
                }
                return;
            }
        }
        u.charges_e4 += r.charge_e4;
    }

    /// The totals, sorted by line and day (deterministic deliveries).
    pub fn finish(self) -> Vec<LineUsage> {
        let mut v: Vec<LineUsage> = self.lines.into_values().collect();
        v.sort_by(|a, b| (&a.line, a.date).cmp(&(&b.line, b.date)));
        v
    }
}

/// `new − old`, per line and day: what a replay changes for consumers.
pub fn delta(old: &[LineUsage], new: &[LineUsage]) -> Vec<LineUsage> {
    let key = |u: &LineUsage| (u.line.clone(), u.date);
    let mut out: std::collections::BTreeMap<(String, Option<NaiveDate>), LineUsage> =
        new.iter().map(|u| (key(u), u.clone())).collect();
    for o in old {
        let e = out.entry(key(o)).or_insert_with(|| LineUsage {
            line: o.line.clone(),
            date: o.date,
            ..LineUsage::default()
        });
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
    }
    out.into_values()
        .filter(|u| {
            u.voice_out_s != 0
                || u.voice_in_s != 0
                || u.sms_out != 0
                || u.sms_in != 0
                || u.data_up_bytes != 0
                || u.data_down_bytes != 0
                || u.vas_events != 0
                || u.charges_e4 != 0
                || u.topups.values().any(|t| t.count != 0 || t.amount_e4 != 0)
        })
        .collect()
}
