//! One latency distribution summarized: count, percentiles, log2 slots.

use tracer_common::hist::bucket_value;

use super::log2;
use crate::snapshot::ClassHistogram;

/// Summary of one latency distribution. Percentiles, min and max are within
/// 1 % of the exact values (bucket midpoints, see `tracer_common::hist`); the
/// mean is exact.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    pub count: u64,
    /// `None` when `count` is 0.
    pub stats: Option<LatencyStats>,
    /// Samples per power-of-two range `[2^k, 2^(k+1))`: `(k, count)`, exact.
    pub log2: Vec<(u32, u64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LatencyStats {
    pub min: u64,
    pub mean: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn from_histogram(h: &ClassHistogram) -> Self {
        let count = h.count();
        let log2 = log2::slots(h);
        if count == 0 {
            return Self {
                count,
                stats: None,
                log2,
            };
        }
        let hdr = h.to_hdr();
        let lowest = h.buckets.iter().position(|&n| n > 0).unwrap_or(0);
        let highest = h.buckets.iter().rposition(|&n| n > 0).unwrap_or(0);
        let (min, max) = (bucket_value(lowest), bucket_value(highest));
        // HdrHistogram cannot hold 0 (0 ns samples go in at 1) and answers a
        // bucket's highest equivalent value: no percentile lies outside the
        // samples' own range.
        let q = |q: f64| hdr.value_at_quantile(q).clamp(min, max);
        Self {
            count,
            stats: Some(LatencyStats {
                min,
                mean: h.sum_ns / count,
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p999: q(0.999),
                max,
            }),
            log2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::Rng;

    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check_within_2_percent(samples: &[u64]) {
        let mut h = ClassHistogram::default();
        for &s in samples {
            h.record(s);
        }
        let lat = Latency::from_histogram(&h);
        let st = lat.stats.unwrap();
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let checks = [
            ("p50", st.p50, exact_quantile(&sorted, 0.5)),
            ("p90", st.p90, exact_quantile(&sorted, 0.9)),
            ("p99", st.p99, exact_quantile(&sorted, 0.99)),
            ("p999", st.p999, exact_quantile(&sorted, 0.999)),
            ("min", st.min, sorted[0]),
            ("max", st.max, *sorted.last().unwrap()),
        ];
        for (name, got, exact) in checks {
            let err = got.abs_diff(exact) as f64 / exact as f64;
            assert!(
                err <= 0.02,
                "{name}: got {got}, exact {exact}, error {:.3}%",
                err * 100.0
            );
        }
        let exact_mean = samples.iter().sum::<u64>() / samples.len() as u64;
        assert_eq!(st.mean, exact_mean);
        assert_eq!(lat.count, samples.len() as u64);
    }

    #[test]
    fn percentiles_within_2_percent_from_100ns_to_10s() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Spread over the whole range.
        let wide: Vec<u64> = (0..200_000).map(|_| rng.log_uniform(100.0, 10e9)).collect();
        check_within_2_percent(&wide);
        // Narrow, like a switch-cost distribution, with a long tail.
        let narrow: Vec<u64> = (0..100_000)
            .map(|i| {
                if i % 1000 == 0 {
                    rng.log_uniform(10e3, 5e6)
                } else {
                    rng.log_uniform(250.0, 450.0)
                }
            })
            .collect();
        check_within_2_percent(&narrow);
        // Few samples, each percentile a different sample.
        for n in [1, 2, 3, 10, 999] {
            let few: Vec<u64> = (0..n).map(|_| rng.log_uniform(100.0, 10e9)).collect();
            check_within_2_percent(&few);
        }
    }

    #[test]
    fn percentiles_stay_within_min_and_max() {
        // All samples at 0 ns: HdrHistogram holds them at 1.
        let mut h = ClassHistogram::default();
        for _ in 0..3 {
            h.record(0);
        }
        let s = Latency::from_histogram(&h).stats.unwrap();
        assert_eq!((s.min, s.p50, s.p999, s.max), (0, 0, 0, 0));
        // Spread samples: every percentile between min and max.
        let mut h = ClassHistogram::default();
        for ns in [0, 5, 900, 1_000_000, 3_000_000_000] {
            h.record(ns);
        }
        let s = Latency::from_histogram(&h).stats.unwrap();
        for p in [s.p50, s.p90, s.p99, s.p999] {
            assert!(s.min <= p && p <= s.max, "{s:?}");
        }
    }

    #[test]
    fn empty_histogram_has_no_stats() {
        let lat = Latency::from_histogram(&ClassHistogram::default());
        assert_eq!(lat.count, 0);
        assert!(lat.stats.is_none());
        assert!(lat.log2.is_empty());
    }
}
