//! One process's switch counters (`--per-process`), merged over CPUs.

use tracer_common::{class::NUM_CLASSES, values::ProcCounts};

/// One process's switch counters, merged over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcSnapshot {
    /// Process name: of its first task seen, or as of its last exec.
    pub comm: [u8; 16],
    /// Switches taking one of its tasks out, by class index.
    pub out: [u64; NUM_CLASSES],
    /// Switches bringing one of its tasks in, by class index.
    pub r#in: [u64; NUM_CLASSES],
}

impl ProcSnapshot {
    pub fn sum_of<'a>(per_cpu: impl IntoIterator<Item = &'a ProcCounts>) -> Self {
        let mut out = Self::default();
        for c in per_cpu {
            for i in 0..NUM_CLASSES {
                out.out[i] += c.out[i];
                out.r#in[i] += c.r#in[i];
            }
        }
        out
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        for i in 0..NUM_CLASSES {
            self.out[i] += other.out[i];
            self.r#in[i] += other.r#in[i];
        }
    }

    /// Switches out, over every class.
    pub fn switches_out(&self) -> u64 {
        self.out.iter().sum()
    }

    pub(super) fn is_zero(&self) -> bool {
        self.out.iter().chain(&self.r#in).all(|&n| n == 0)
    }

    pub(super) fn minus(&self, earlier: Option<&Self>) -> Self {
        let Some(e) = earlier else { return self.clone() };
        Self {
            comm: self.comm,
            out: std::array::from_fn(|i| self.out[i].saturating_sub(e.out[i])),
            r#in: std::array::from_fn(|i| self.r#in[i].saturating_sub(e.r#in[i])),
        }
    }
}
