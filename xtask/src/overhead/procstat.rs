//! What the rest of the machine did during a run: the busy time of the
//! other CPUs, from /proc/stat.

use anyhow::Context as _;

/// One reading of /proc/stat.
#[derive(Clone, Debug, Default)]
pub struct Stat {
    /// Per CPU: (busy, total) in clock ticks; busy excludes idle and iowait.
    pub cpus: Vec<(u64, u64)>,
}

pub fn read() -> anyhow::Result<Stat> {
    parse(&std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?)
}

fn parse(text: &str) -> anyhow::Result<Stat> {
    anyhow::ensure!(text.starts_with("cpu"), "/proc/stat does not start with cpu lines");
    let mut stat = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some(cpu) if cpu.starts_with("cpu") && cpu.len() > 3 => {
                let ticks: Vec<u64> = fields.filter_map(|v| v.parse().ok()).collect();
                let total: u64 = ticks.iter().take(8).sum();
                // user nice system idle iowait irq softirq steal
                let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
                stat.cpus.push((total - idle, total));
            }
            _ => {}
        }
    }
    Ok(stat)
}

/// The share of the CPUs other than `pinned` that was busy between `a` and
/// `b` (0 to 1; NaN when no time passed).
pub fn others_busy(a: &Stat, b: &Stat, pinned: usize) -> f64 {
    let (mut busy, mut total) = (0, 0);
    for (cpu, (x, y)) in a.cpus.iter().zip(&b.cpus).enumerate() {
        if cpu != pinned {
            busy += y.0.saturating_sub(x.0);
            total += y.1.saturating_sub(x.1);
        }
    }
    busy as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_of_the_other_cpus() {
        let a = parse("cpu  1 2 3 4\ncpu0 10 0 10 80 0 0 0 0\ncpu1 50 0 0 50 0 0 0 0\nctxt 100\n").unwrap();
        let b = parse("cpu  1 2 3 4\ncpu0 20 0 10 170 0 0 0 0\ncpu1 150 0 0 50 0 0 0 0\nctxt 250\n").unwrap();
        // CPU 0 (the other one when CPU 1 is pinned): 10 busy of 100.
        assert!((others_busy(&a, &b, 1) - 0.1).abs() < 1e-9);
        assert!((others_busy(&a, &b, 0) - 1.0).abs() < 1e-9);
    }
}
