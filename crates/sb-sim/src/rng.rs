//! Deterministic randomness.
//!
//! Every independent part of the output draws from its own generator, seeded from
//! `(seed, stream, index)` through SplitMix64. Parts can therefore be produced in any
//! order and on any number of threads and still come out identical, and changing one
//! part (say, a fault rate) leaves the random numbers of the others untouched.
//!
//! Distributions are sampled from precomputed quantile tables: this is faster than
//! calling `ln`/`exp` per record, and keeps floating-point library calls out of the
//! per-record path.

use rand::RngCore;
use rand_pcg::Pcg64Mcg;

/// One step of SplitMix64: a bijective, well-mixing function of a 64-bit value.
pub(crate) const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The independent random streams of a run.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub(crate) enum Stream {
    /// Customers, lines, options.
    Population = 1,
    /// Per-line traffic traits (activity, home cell).
    LineTraits = 2,
    /// The usage events of one hour.
    Traffic = 3,
    /// Duplicate and malformed records of one hour.
    RecordFaults = 4,
    /// Which hours get a duplicate file, and of which earlier file.
    FileFaults = 5,
    /// Which line is abroad on which day.
    Roaming = 6,
}

/// A 64-bit value determined by `(seed, stream, index)`.
pub(crate) fn mix(seed: u64, stream: Stream, index: u64) -> u64 {
    splitmix64(splitmix64(seed ^ splitmix64(stream as u64)) ^ index)
}

/// A generator for `(seed, stream, index)`.
pub(crate) fn rng(seed: u64, stream: Stream, index: u64) -> Pcg64Mcg {
    let hi = mix(seed, stream, index);
    let lo = splitmix64(hi);
    Pcg64Mcg::new((u128::from(hi) << 64) | u128::from(lo))
}

/// A uniform integer in `0..n` from the high bits of `u` (Lemire's multiply-shift; `n` ≤ 2³²).
#[inline]
pub(crate) fn below(u: u64, n: u32) -> u32 {
    (((u >> 32) * u64::from(n)) >> 32) as u32
}

const TABLE_BITS: u32 = 12;
const TABLE_LEN: usize = 1 << TABLE_BITS;

/// A continuous distribution given by its quantile function at 4097 points.
pub(crate) struct Quantiles {
    table: Vec<f64>,
}

impl Quantiles {
    fn from_quantile_fn(q: impl Fn(f64) -> f64) -> Self {
        // The extreme quantiles of unbounded distributions are infinite: stop just short.
        let eps = 1.0 / (TABLE_LEN as f64 * 8.0);
        let table = (0..=TABLE_LEN).map(|i| q((i as f64 / TABLE_LEN as f64).clamp(eps, 1.0 - eps))).collect();
        Self { table }
    }

    /// Log-normal with the given median and shape, capped at `cap`.
    pub(crate) fn log_normal(median: f64, sigma: f64, cap: f64) -> Self {
        Self::from_quantile_fn(|p| (median * (sigma * inverse_normal(p)).exp()).min(cap))
    }

    /// Exponential with mean 1.
    pub(crate) fn exponential() -> Self {
        Self::from_quantile_fn(|p| -(1.0 - p).ln())
    }

    /// A sample, from one uniform 64-bit value (linear interpolation between table points).
    #[inline]
    pub(crate) fn sample(&self, u: u64) -> f64 {
        let i = (u >> (64 - TABLE_BITS)) as usize;
        let frac = ((u >> 20) & 0xFFFF_FFFF) as f64 * (1.0 / 4_294_967_296.0);
        let (a, b) = (self.table[i], self.table[i + 1]);
        a + (b - a) * frac
    }

    /// The mean of the sampled distribution (exactly, interpolation included).
    #[cfg(test)]
    pub(crate) fn mean(&self) -> f64 {
        self.table.windows(2).map(|w| (w[0] + w[1]) / 2.0).sum::<f64>() / TABLE_LEN as f64
    }

    /// Midpoints of the 4096 equally likely segments, for computing other expectations.
    pub(crate) fn midpoints(&self) -> impl Iterator<Item = f64> + '_ {
        self.table.windows(2).map(|w| (w[0] + w[1]) / 2.0)
    }
}

/// The standard normal quantile function (Acklam's rational approximation, |error| < 1.2e-9).
fn inverse_normal(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    }
}

/// Walker/Vose alias table: picks index `i` with probability `weights[i] / Σ weights` in O(1).
pub(crate) struct AliasTable {
    threshold: Vec<u32>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds the table; `weights` must be positive and fewer than 2³².
    pub(crate) fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        let mut threshold = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            threshold[s] = (scaled[s] * 4_294_967_296.0).min(u32::MAX as f64) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Self { threshold, alias }
    }

    /// An index drawn from one uniform 64-bit value.
    #[inline]
    pub(crate) fn sample(&self, u: u64) -> usize {
        let i = below(u, self.threshold.len() as u32) as usize;
        if (u as u32) < self.threshold[i] { i } else { self.alias[i] as usize }
    }
}

/// A draw from a small weighted table of constants.
#[inline]
pub(crate) fn pick<T: Copy>(rng: &mut Pcg64Mcg, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut r = below(rng.next_u64(), total);
    for &(value, weight) in table {
        if r < weight {
            return value;
        }
        r -= weight;
    }
    table[table.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_indices_give_different_generators() {
        let a = rng(1, Stream::Traffic, 0).next_u64();
        assert_ne!(a, rng(1, Stream::Traffic, 1).next_u64());
        assert_ne!(a, rng(1, Stream::RecordFaults, 0).next_u64());
        assert_ne!(a, rng(2, Stream::Traffic, 0).next_u64());
        assert_eq!(a, rng(1, Stream::Traffic, 0).next_u64());
    }

    #[test]
    fn the_normal_quantiles_are_right_where_it_matters() {
        assert!(inverse_normal(0.5).abs() < 1e-9);
        assert!((inverse_normal(0.975) - 1.959_964).abs() < 1e-5);
        assert!((inverse_normal(0.01) + 2.326_348).abs() < 1e-5);
    }

    #[test]
    fn quantile_tables_sample_their_distribution() {
        let exp = Quantiles::exponential();
        assert!((exp.mean() - 1.0).abs() < 0.01, "{}", exp.mean());
        let ln = Quantiles::log_normal(100.0, 1.0, 1e9);
        // Mean of a log-normal is median · e^(σ²/2).
        assert!((ln.mean() / (100.0 * 0.5f64.exp()) - 1.0).abs() < 0.02, "{}", ln.mean());
        let mut r = rng(7, Stream::Traffic, 0);
        let below_median = (0..10_000).filter(|_| ln.sample(r.next_u64()) < 100.0).count();
        assert!((4_700..5_300).contains(&below_median), "{below_median}");
    }

    #[test]
    fn the_alias_table_follows_the_weights() {
        let t = AliasTable::new(&[1.0, 3.0, 0.5, 0.5]);
        let mut r = rng(3, Stream::Traffic, 0);
        let mut counts = [0u32; 4];
        for _ in 0..50_000 {
            counts[t.sample(r.next_u64())] += 1;
        }
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((29_000..31_000).contains(&counts[1]), "{counts:?}");
        assert!((4_000..6_000).contains(&counts[2]), "{counts:?}");
    }
}
