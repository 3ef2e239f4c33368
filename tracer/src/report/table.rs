//! The human report: a table with one row per class, then a log2 histogram of
//! the switch cost per class.

use std::fmt::Write as _;

use super::{Report, fmt_ns, log2};

/// What `switch_cost_ns` covers, printed under the table.
pub const SWITCH_COST_MEANING: &str = "switch cost = from sched_switch (prev leaving) until the incoming task runs again \
on the same CPU (sched_exit_tp); it includes the tracer's own probes (tens of ns)";

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}", part as f64 * 100.0 / whole as f64)
    }
}

/// Renders `report` for a terminal. `histograms` adds the log2 histograms.
pub fn render(report: &Report, histograms: bool) -> String {
    let mut out = String::new();
    let secs = report.duration_ns as f64 / 1e9;
    let total = report.switches();
    let rate = |n: u64| {
        if secs > 0.0 {
            format!("{:.1}", n as f64 / secs)
        } else {
            "-".into()
        }
    };
    let _ = writeln!(
        out,
        "{total} switches in {} ({}/s); kernel {}, probe {}",
        fmt_ns(report.duration_ns),
        rate(total),
        report.meta.kernel_release,
        report.meta.probe
    );
    let _ = writeln!(
        out,
        "{:<8} {:>10} {:>11} {:>6} {:>6} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "class", "switches", "rate/s", "vol%", "pre%", "cost-n", "min", "p50", "p90", "p99", "p99.9", "max"
    );
    for c in &report.classes {
        let n = c.switches();
        let _ = write!(
            out,
            "{:<8} {:>10} {:>11} {:>6} {:>6}",
            c.class.name(),
            n,
            rate(n),
            pct(c.voluntary, n),
            pct(c.preempted, n)
        );
        match &c.switch_cost {
            Some(lat) => {
                let _ = write!(out, " {:>10}", lat.count);
                match &lat.stats {
                    Some(s) => {
                        for v in [s.min, s.p50, s.p90, s.p99, s.p999, s.max] {
                            let _ = write!(out, " {:>8}", fmt_ns(v));
                        }
                    }
                    None => {
                        for _ in 0..6 {
                            let _ = write!(out, " {:>8}", "-");
                        }
                    }
                }
            }
            None => {
                let _ = write!(out, " {:>10}", "-");
                for _ in 0..6 {
                    let _ = write!(out, " {:>8}", "-");
                }
            }
        }
        out.push('\n');
    }
    match &report.meta.switch_cost_unavailable {
        Some(why) => {
            let _ = writeln!(out, "switch cost unavailable: {why}");
        }
        None => {
            let _ = writeln!(out, "{SWITCH_COST_MEANING}");
        }
    }
    if histograms {
        for c in &report.classes {
            if let Some(lat) = &c.switch_cost
                && lat.count > 0
            {
                let _ = writeln!(
                    out,
                    "\nswitch_cost_ns, class {} ({} samples):",
                    c.class.name(),
                    lat.count
                );
                out.push_str(&log2::render(&lat.log2, "nsecs"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use tracer_common::Class;

    use super::*;
    use crate::{report::tests::meta, snapshot::Snapshot};

    fn sample_report(switch_cost: bool) -> Report {
        let a = Snapshot::empty(1, switch_cost);
        let mut b = a.clone();
        b.taken_ns = 1_000_000_000;
        for i in 0..1000 {
            b.record(0, Class::Thread, i % 10 != 0, Some(300 + i % 50));
        }
        for _ in 0..10 {
            b.record(0, Class::Process, true, Some(2_000));
        }
        let mut m = meta();
        if !switch_cost {
            m.switch_cost_unavailable = Some("no sched_exit_tp".into());
        }
        Report::between(&a, &b, m)
    }

    #[test]
    fn one_row_per_class_with_shares_and_percentiles() {
        let text = render(&sample_report(true), true);
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("1010 switches in 1.00s (1010.0/s)"), "{}", rows[0]);
        assert!(rows[1].split_whitespace().eq([
            "class", "switches", "rate/s", "vol%", "pre%", "cost-n", "min", "p50", "p90", "p99", "p99.9", "max"
        ]));
        let thread: Vec<&str> = rows
            .iter()
            .find(|r| r.starts_with("thread"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(&thread[..6], ["thread", "1000", "1000.0", "90.0", "10.0", "1000"]);
        assert_eq!(thread[6], "301ns"); // min 300 reported as the midpoint of its bucket [300, 304)
        let idle: Vec<&str> = rows
            .iter()
            .find(|r| r.starts_with("idle"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(&idle[..6], ["idle", "0", "0.0", "-", "-", "0"]);
        assert!(text.contains("switch_cost_ns, class thread (1000 samples):"));
        assert!(text.contains("switch_cost_ns, class process (10 samples):"));
        assert!(!text.contains("class idle ("));
    }

    #[test]
    fn unavailable_switch_cost_is_dashes_and_a_reason() {
        let text = render(&sample_report(false), true);
        let thread: Vec<&str> = text
            .lines()
            .find(|r| r.starts_with("thread"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(&thread[5..], ["-"; 7]);
        assert!(text.contains("switch cost unavailable: no sched_exit_tp"));
        assert!(!text.contains("switch_cost_ns, class"));
    }
}
