//! Latency buckets: logarithmic, 25 % wide, from 100 µs to about 10 minutes, so percentiles
//! over any range of minutes come out within about 12 % of the true value.

/// Bucket 0 holds everything under this many microseconds.
const FIRST_US: f64 = 100.0;
/// Each bucket's upper bound is this times the previous one.
const GROWTH: f64 = 1.25;
/// The last bucket holds everything above the previous bound.
pub const BUCKETS: u32 = 72;

/// The bucket of a latency.
pub fn bucket(latency_us: u64) -> u32 {
    let l = latency_us as f64;
    if l < FIRST_US {
        return 0;
    }
    let b = ((l / FIRST_US).ln() / GROWTH.ln()).floor() as u32 + 1;
    b.min(BUCKETS - 1)
}

/// The upper bound of bucket `b`, in microseconds: what a percentile falling in it reports.
pub fn upper_bound_us(b: u32) -> f64 {
    FIRST_US * GROWTH.powi(b as i32)
}

/// The `q` quantile (0–1) of a histogram given as (bucket, count) pairs, in milliseconds;
/// `None` when it is empty.
pub fn quantile_ms(counts: &[(u32, i64)], q: f64) -> Option<f64> {
    let total: i64 = counts.iter().map(|(_, c)| c).sum();
    if total <= 0 {
        return None;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable_by_key(|(b, _)| *b);
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (b, c) in sorted {
        seen += c;
        if seen >= rank {
            return Some(upper_bound_us(b) / 1000.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_buckets_whose_bound_is_close_above_them() {
        for us in [150u64, 1_000, 12_345, 250_000, 3_000_000] {
            let upper = upper_bound_us(bucket(us));
            assert!(upper >= us as f64 && upper <= us as f64 * 1.26, "{us} -> {upper}");
        }
        assert_eq!(bucket(5), 0);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_come_from_the_cumulative_counts() {
        // 90 fast calls (~1 ms) and 10 slow ones (~100 ms).
        let h = [(bucket(1_000), 90), (bucket(100_000), 10)];
        let p50 = quantile_ms(&h, 0.5).unwrap();
        let p95 = quantile_ms(&h, 0.95).unwrap();
        assert!((1.0..1.3).contains(&p50), "{p50}");
        assert!((100.0..126.0).contains(&p95), "{p95}");
        assert_eq!(quantile_ms(&[], 0.5), None);
    }
}
