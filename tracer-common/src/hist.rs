//! Log-linear latency buckets, computed in the kernel without floating point.
//!
//! Values below [`LINEAR_LIMIT`] ns each have their own bucket (exact). Above
//! it, every power of two `[2^k, 2^(k+1))` is split into [`SUB_BUCKETS`] equal
//! buckets, so a bucket is at most 1/32 of its lower bound wide. Reporting a
//! bucket's midpoint is therefore within 1/64 (1.6 %) of any value in it,
//! inside the 2 % bound promised for every percentile. The last bucket also
//! holds everything from [`MAX_VALUE`] up (about 34.4 s).
//!
//! Size: [`NUM_BUCKETS`] `u64`s and a sum per histogram (7,944 bytes), one
//! histogram per metric, class and CPU: 16 of them, 124 KiB per CPU with every
//! metric on. (64 sub-buckets, as before, took twice that: 249 KiB per CPU,
//! 62 MiB on a 256-CPU host, for a precision the reports do not need.)

/// log2 of the number of sub-buckets per power of two.
pub const SUB_BITS: u32 = 5;
/// Sub-buckets per power of two.
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Values below this are counted exactly, one bucket each.
pub const LINEAR_LIMIT: u64 = 2 * SUB_BUCKETS;
/// Highest power of two with its own buckets: values up to `2^(MAX_MSB+1) - 1`.
pub const MAX_MSB: u32 = 34;
/// Lowest value that is clamped into the last bucket.
pub const MAX_VALUE: u64 = 1 << (MAX_MSB + 1);
/// Buckets per histogram.
pub const NUM_BUCKETS: usize = ((MAX_MSB - SUB_BITS + 1) as usize + 1) * SUB_BUCKETS as usize;

/// Index of the most significant set bit of `v` (`v != 0`). A branchy binary
/// search rather than `leading_zeros`, which the BPF target has no instruction
/// for.
#[inline(always)]
pub fn msb(mut v: u64) -> u32 {
    let mut r = 0;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    r
}

/// The bucket that counts a latency of `ns` nanoseconds. Always `< NUM_BUCKETS`.
#[inline(always)]
pub fn bucket_index(ns: u64) -> usize {
    if ns < LINEAR_LIMIT {
        return ns as usize;
    }
    if ns >= MAX_VALUE {
        return NUM_BUCKETS - 1;
    }
    let shift = msb(ns) - SUB_BITS; // >= 1 here
    let sub = (ns >> shift) - SUB_BUCKETS; // 0..SUB_BUCKETS
    ((shift as usize + 1) << SUB_BITS) + sub as usize
}

/// The values a bucket holds: `[low, high)`.
pub fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < LINEAR_LIMIT {
        return (index, index + 1);
    }
    let shift = (index >> SUB_BITS) - 1;
    let low = ((index & (SUB_BUCKETS - 1)) + SUB_BUCKETS) << shift;
    (low, low + (1 << shift))
}

/// The value that stands for every sample in a bucket: its midpoint.
pub fn bucket_value(index: usize) -> u64 {
    let (low, high) = bucket_range(index);
    low + (high - 1 - low) / 2
}

/// One latency histogram (one class on one CPU).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Histogram {
    /// Samples per bucket.
    pub buckets: [u64; NUM_BUCKETS],
    /// Sum of all samples in ns (exact mean = sum / count).
    pub sum_ns: u64,
}

impl Histogram {
    pub const ZERO: Histogram = Histogram {
        buckets: [0; NUM_BUCKETS],
        sum_ns: 0,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msb_matches_leading_zeros() {
        for shift in 0..64 {
            for v in [1u64 << shift, (1u64 << shift) | 1, ((1u64 << shift) - 1).max(1)] {
                assert_eq!(msb(v), 63 - v.leading_zeros(), "v={v}");
            }
        }
        assert_eq!(msb(u64::MAX), 63);
    }

    #[test]
    fn buckets_are_contiguous_and_cover_everything() {
        let mut expected_low = 0;
        for i in 0..NUM_BUCKETS {
            let (low, high) = bucket_range(i);
            assert_eq!(low, expected_low, "bucket {i} starts where {} ended", i.wrapping_sub(1));
            assert!(high > low);
            assert_eq!(bucket_index(low), i);
            assert_eq!(bucket_index(high - 1), i);
            expected_low = high;
        }
        assert_eq!(expected_low, MAX_VALUE);
        assert_eq!(bucket_index(MAX_VALUE), NUM_BUCKETS - 1);
        assert_eq!(bucket_index(u64::MAX), NUM_BUCKETS - 1);
    }

    #[test]
    fn width_is_at_most_a_32nd_of_the_value() {
        for i in LINEAR_LIMIT as usize..NUM_BUCKETS {
            let (low, high) = bucket_range(i);
            assert!((high - low) * SUB_BUCKETS <= low, "bucket {i}: [{low}, {high})");
        }
    }

    #[test]
    fn midpoint_is_within_1_6_percent() {
        for i in 0..NUM_BUCKETS {
            let (low, high) = bucket_range(i);
            let mid = bucket_value(i);
            for v in [low, high - 1] {
                let err = mid.abs_diff(v) as f64 / v.max(1) as f64;
                assert!(err <= 1.0 / 64.0, "bucket {i}: mid {mid} vs {v}: {err}");
            }
        }
    }

    #[test]
    fn a_histogram_is_under_8_kib() {
        assert_eq!(NUM_BUCKETS, 992);
        assert!(core::mem::size_of::<Histogram>() <= 8 * 1024);
    }

    proptest::proptest! {
        #[test]
        fn every_value_lands_in_a_bucket_that_holds_it(v in 0u64..MAX_VALUE) {
            let i = bucket_index(v);
            let (low, high) = bucket_range(i);
            proptest::prop_assert!(low <= v && v < high);
        }
    }
}
