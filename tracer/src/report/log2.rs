//! Power-of-two histograms in the layout bcc's tools print, so the classes can
//! be compared at a glance.

use std::fmt::Write as _;

use tracer_common::hist::{bucket_range, msb};

use crate::snapshot::ClassHistogram;

/// Width of the star bar.
const BAR_WIDTH: u64 = 40;

/// Samples per power-of-two range `[2^k, 2^(k+1))` as `(k, count)`, from the
/// first non-empty range to the last. Exact: every fine bucket lies inside one
/// power of two.
pub fn slots(h: &ClassHistogram) -> Vec<(u32, u64)> {
    let mut by_slot = [0u64; 64];
    for (i, &n) in h.buckets.iter().enumerate() {
        if n > 0 {
            let (low, _) = bucket_range(i);
            let slot = if low == 0 { 0 } else { msb(low) as usize };
            by_slot[slot] += n;
        }
    }
    let Some(first) = by_slot.iter().position(|&n| n > 0) else {
        return Vec::new();
    };
    let last = by_slot.iter().rposition(|&n| n > 0).unwrap_or(first);
    (first..=last).map(|k| (k as u32, by_slot[k])).collect()
}

/// Renders slots as
/// `     256 -> 511        : 1234     |*****                |`.
pub fn render(slots: &[(u32, u64)], unit: &str) -> String {
    let mut out = String::new();
    let max = slots.iter().map(|&(_, n)| n).max().unwrap_or(0);
    let _ = writeln!(out, "{unit:>24} : count     distribution");
    for &(k, n) in slots {
        let low: u64 = if k == 0 { 0 } else { 1 << k };
        let high: u64 = (1u64 << (k + 1)) - 1;
        let stars = if max == 0 { 0 } else { (n * BAR_WIDTH).div_ceil(max) } as usize;
        let _ = writeln!(
            out,
            "{low:>11} -> {high:<10} : {n:<9} |{:<width$}|",
            "*".repeat(stars),
            width = BAR_WIDTH as usize
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exact_powers_of_two() {
        let mut h = ClassHistogram::default();
        for v in [300, 400, 511, 512, 1023, 5000] {
            h.record(v);
        }
        // 256..511: 3, 512..1023: 2, 1024..2047: 0, 2048..4095: 0, 4096..8191: 1
        assert_eq!(slots(&h), vec![(8, 3), (9, 2), (10, 0), (11, 0), (12, 1)]);
    }

    #[test]
    fn renders_bcc_style() {
        let text = render(&[(8, 4), (9, 2)], "nsecs");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].trim_start().starts_with("nsecs : count"));
        assert!(lines[1].contains("256 -> 511"));
        assert!(lines[1].contains(&format!("|{}|", "*".repeat(40))));
        assert!(lines[2].contains(&format!("|{}{}|", "*".repeat(20), " ".repeat(20))));
    }
}
