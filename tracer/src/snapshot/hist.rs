//! One latency histogram (a metric, a class), merged over CPUs.

use tracer_common::hist::{Histogram, MAX_VALUE, NUM_BUCKETS, bucket_index, bucket_value};

/// One latency histogram, merged over CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassHistogram {
    pub buckets: Vec<u64>,
    pub sum_ns: u64,
}

impl Default for ClassHistogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; NUM_BUCKETS],
            sum_ns: 0,
        }
    }
}

impl ClassHistogram {
    /// Merges per-CPU histograms.
    pub fn sum_of<'a>(per_cpu: impl IntoIterator<Item = &'a Histogram>) -> Self {
        let mut out = Self::default();
        for h in per_cpu {
            for (total, n) in out.buckets.iter_mut().zip(h.buckets.iter()) {
                *total += n;
            }
            out.sum_ns += h.sum_ns;
        }
        out
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds one sample, exactly as the kernel program does.
    pub fn record(&mut self, ns: u64) {
        self.buckets[bucket_index(ns)] += 1;
        self.sum_ns += ns;
    }

    /// As an HdrHistogram: every sample at its bucket's midpoint (within
    /// 1.6 % of its true value), counts exact.
    pub fn to_hdr(&self) -> hdrhistogram::Histogram<u64> {
        let mut hdr =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, MAX_VALUE, 3).expect("static bounds are valid");
        for (i, &n) in self.buckets.iter().enumerate() {
            if n > 0 {
                // Midpoints are below MAX_VALUE by construction, so this cannot fail.
                hdr.record_n(bucket_value(i).max(1), n).expect("value within bounds");
            }
        }
        hdr
    }

    pub(super) fn minus(&self, earlier: &Self) -> Self {
        Self {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_per_cpu_histograms() {
        let mut h1 = Histogram::ZERO;
        let mut h2 = Histogram::ZERO;
        h1.buckets[bucket_index(1000)] += 2;
        h1.sum_ns += 2000;
        h2.buckets[bucket_index(1000)] += 1;
        h2.sum_ns += 1000;
        let merged = ClassHistogram::sum_of([&h1, &h2]);
        assert_eq!(merged.count(), 3);
        assert_eq!(merged.sum_ns, 3000);
    }
}
