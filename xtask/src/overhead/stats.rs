//! The statistics of the overhead benchmark: medians, and bootstrap 95 %
//! confidence intervals of a median, drawn with a fixed-seed generator so
//! that the same samples always give the same interval.

/// Resamples per interval: enough that the interval's ends move by less than
/// the last digit shown.
const RESAMPLES: usize = 4000;

/// The median of `v` (the lower one for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[(s.len() - 1) / 2]
}

/// A median and its bootstrap 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

impl Estimate {
    /// Whether the whole interval is below `limit` (`Some(true)`), above it
    /// (`Some(false)`), or straddles it (`None`: undecided).
    pub fn below(&self, limit: f64) -> Option<bool> {
        if self.high < limit {
            Some(true)
        } else if self.low > limit {
            Some(false)
        } else {
            None
        }
    }
}

/// xorshift64*: small, fast, and the same sequence on every host.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The median of `samples` with its percentile-bootstrap 95 % interval:
/// the samples are drawn again with replacement, `RESAMPLES` times, and the
/// interval holds the middle 95 % of those resamples' medians. For paired
/// comparisons pass the per-round differences.
pub fn bootstrap_median(samples: &[f64]) -> Estimate {
    let median = median(samples);
    if samples.len() < 2 {
        return Estimate {
            median,
            low: f64::NEG_INFINITY,
            high: f64::INFINITY,
        };
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut draw = vec![0.0; samples.len()];
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            for d in draw.iter_mut() {
                *d = samples[rng.below(samples.len())];
            }
            self::median(&draw)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    let at = |q: f64| medians[((RESAMPLES - 1) as f64 * q).round() as usize];
    Estimate {
        median,
        low: at(0.025),
        high: at(0.975),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn interval_holds_the_median_and_narrows_with_more_samples() {
        // Samples spread evenly around 100 with a few outliers.
        let few: Vec<f64> = (0..10).map(|i| 95.0 + i as f64).collect();
        let many: Vec<f64> = (0..200).map(|i| 95.0 + (i % 10) as f64).collect();
        let (a, b) = (bootstrap_median(&few), bootstrap_median(&many));
        assert!(a.low <= a.median && a.median <= a.high, "{a:?}");
        assert!(b.high - b.low < a.high - a.low, "{a:?} {b:?}");
        assert!(b.low >= 95.0 && b.high <= 104.0, "{b:?}");
    }

    #[test]
    fn decides_only_when_the_interval_is_clear_of_the_line() {
        let e = bootstrap_median(&(0..30).map(|i| 10.0 + (i % 5) as f64).collect::<Vec<_>>());
        assert_eq!(e.below(20.0), Some(true));
        assert_eq!(e.below(5.0), Some(false));
        assert_eq!(e.below(e.median), None);
        // One sample decides nothing.
        assert_eq!(bootstrap_median(&[1.0]).below(100.0), None);
    }

    #[test]
    fn same_samples_same_interval() {
        let s: Vec<f64> = (0..31).map(|i| ((i * 37) % 11) as f64).collect();
        assert_eq!(bootstrap_median(&s), bootstrap_median(&s));
    }
}
