//! The human report: a table with one row per class (counts and the switch
//! cost), a table per other latency, then log2 histograms.

use std::fmt::Write as _;

use tracer_common::Class;

use super::{Latency, Processes, Report, escape_comm, fmt_ns, log2, meaning};
use crate::snapshot::metrics::{Metric, MetricSet};

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}", part as f64 * 100.0 / whole as f64)
    }
}

const LATENCY_HEADER: [&str; 7] = ["count", "min", "p50", "p90", "p99", "p99.9", "max"];

/// The seven latency columns: count, then min..max (dashes without samples
/// or when not measured).
fn latency_cells(out: &mut String, lat: Option<&Latency>) {
    match lat {
        Some(lat) => {
            let _ = write!(out, " {:>10}", lat.count);
            match &lat.stats {
                Some(s) => {
                    for v in [s.min, s.p50, s.p90, s.p99, s.p999, s.max] {
                        let _ = write!(out, " {:>8}", fmt_ns(v));
                    }
                }
                None => out.push_str(&format!(" {:>8}", "-").repeat(6)),
            }
        }
        None => {
            let _ = write!(out, " {:>10}", "-");
            out.push_str(&format!(" {:>8}", "-").repeat(6));
        }
    }
}

/// The kernel's own count beside tracer's total.
fn kernel_line(kernel: Option<u64>, filtered: bool) -> String {
    match (kernel, filtered) {
        (None, _) => "kernel's own switch count unavailable (/proc/stat unreadable)".into(),
        (Some(n), false) => format!("kernel counted {n} switches in the same span (/proc/stat ctxt)"),
        (Some(n), true) => format!(
            "kernel counted {n} switches in the same span on the whole host (/proc/stat ctxt; \
             the filters trace part of them)"
        ),
    }
}

fn latency_header(out: &mut String, count_label: &str) {
    let _ = write!(out, " {:>10}", count_label);
    for h in &LATENCY_HEADER[1..] {
        let _ = write!(out, " {h:>8}");
    }
}

/// Renders `report` for a terminal, with log2 histograms for the metrics in
/// `histograms`.
pub fn render(report: &Report, histograms: MetricSet) -> String {
    let mut out = String::new();
    header(&mut out, report);
    class_table(&mut out, report);
    latency_tables(&mut out, report);
    if let Some(p) = &report.processes {
        processes(&mut out, p);
    }
    if let Some(own) = &report.own {
        super::own_cost::render(&mut out, own, report.duration_ns);
    }
    histogram_sections(&mut out, report, histograms);
    out
}

/// `n` events per second of the report's span (`-` for an empty span).
fn rate(n: u64, duration_ns: u64) -> String {
    let secs = duration_ns as f64 / 1e9;
    if secs > 0.0 {
        format!("{:.1}", n as f64 / secs)
    } else {
        "-".into()
    }
}

/// Totals, the probe, the kernel's own count, unresolved switches.
fn header(out: &mut String, report: &Report) {
    let total = report.switches();
    let meta = &report.meta;
    let _ = writeln!(
        out,
        "{total} switches in {} ({}/s); kernel {}, probe {}",
        fmt_ns(report.duration_ns),
        rate(total, report.duration_ns),
        meta.kernel_release,
        meta.probe
    );
    let _ = writeln!(out, "{}", kernel_line(report.kernel_switches, meta.filtered));
    if report.unresolved > 0 {
        let _ = writeln!(
            out,
            "warning: {} switches are in no class: the tracepoint probe did not know the incoming task's process",
            report.unresolved
        );
    }
}

/// One row per class: counts, shares and the switch cost.
fn class_table(out: &mut String, report: &Report) {
    let meta = &report.meta;
    let with_cost = meta.selected.contains(Metric::SwitchCost);
    let _ = write!(
        out,
        "{:<8} {:>10} {:>11} {:>6} {:>6}",
        "class", "switches", "rate/s", "vol%", "pre%"
    );
    if with_cost {
        latency_header(out, "cost-n");
    }
    out.push('\n');
    for c in &report.classes {
        let n = c.switches();
        let _ = write!(
            out,
            "{:<8} {:>10} {:>11} {:>6} {:>6}",
            c.class.name(),
            n,
            rate(n, report.duration_ns),
            pct(c.voluntary, n),
            pct(c.preempted, n)
        );
        if with_cost {
            latency_cells(out, c.latency(Metric::SwitchCost));
        }
        out.push('\n');
    }
    if with_cost {
        match meta.why_unavailable(Metric::SwitchCost) {
            Some(why) => {
                let _ = writeln!(out, "switch cost unavailable: {why}");
            }
            None => {
                let _ = writeln!(out, "switch cost: {}", meaning(Metric::SwitchCost));
            }
        }
    }
}

/// A table per other selected latency, one row per class.
fn latency_tables(out: &mut String, report: &Report) {
    let meta = &report.meta;
    for metric in meta.selected.iter().filter(|&m| m != Metric::SwitchCost) {
        let _ = writeln!(out, "\n{}: {}", metric.key(), meaning(metric));
        if let Some(why) = meta.why_unavailable(metric) {
            let _ = writeln!(out, "unavailable: {why}");
            continue;
        }
        let _ = write!(out, "{:<8}", "class");
        latency_header(out, "count");
        out.push('\n');
        for c in &report.classes {
            let _ = write!(out, "{:<8}", c.class.name());
            latency_cells(out, c.latency(metric));
            out.push('\n');
        }
    }
}

/// A log2 histogram per metric in `histograms` and class with samples.
fn histogram_sections(out: &mut String, report: &Report, histograms: MetricSet) {
    for metric in histograms.iter() {
        for c in &report.classes {
            if let Some(lat) = c.latency(metric)
                && lat.count > 0
            {
                let _ = writeln!(
                    out,
                    "\n{}, class {} ({} samples):",
                    metric.key(),
                    c.class.name(),
                    lat.count
                );
                out.push_str(&log2::render(&lat.log2, "nsecs"));
            }
        }
    }
}

/// The per-process table: switches out and in, by class.
fn processes(out: &mut String, p: &Processes) {
    let _ = writeln!(
        out,
        "\nper process: top {} of {} by switches out (out: one of its tasks left the CPU; in: one came in)",
        p.top.len(),
        p.total
    );
    if p.dropped > 0 {
        let _ = writeln!(
            out,
            "warning: {} per-process counts were lost: the kernel's process table was full",
            p.dropped
        );
    }
    let classes = [Class::Thread, Class::Process, Class::Kernel, Class::Idle];
    let _ = write!(out, "{:>8} {:<16} {:>9}", "tgid", "comm", "out");
    for c in classes {
        let _ = write!(out, " {:>9}", c.name());
    }
    let _ = write!(out, " {:>9}", "in");
    for c in classes {
        let _ = write!(out, " {:>9}", c.name());
    }
    out.push('\n');
    for proc in &p.top {
        let _ = write!(
            out,
            "{:>8} {:<16} {:>9}",
            proc.tgid,
            escape_comm(&proc.comm),
            proc.switches_out()
        );
        for c in classes {
            let _ = write!(out, " {:>9}", proc.out[c.index()]);
        }
        let _ = write!(out, " {:>9}", proc.r#in.iter().sum::<u64>());
        for c in classes {
            let _ = write!(out, " {:>9}", proc.r#in[c.index()]);
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::Class;

    use super::*;
    use crate::{
        report::{Report, tests::meta},
        snapshot::Snapshot,
    };

    fn sample_report(measured: MetricSet, unavailable: Vec<(Metric, String)>) -> Report {
        let a = Snapshot::empty(1, measured);
        let mut b = a.clone();
        b.taken_ns = 1_000_000_000;
        for i in 0..1000 {
            b.record(
                0,
                Class::Thread,
                i % 10 != 0,
                &[
                    (Metric::SwitchCost, 300 + i % 50),
                    (Metric::Oncpu, 5000),
                    (Metric::Runq, 2000),
                ],
            );
        }
        for _ in 0..10 {
            b.record(0, Class::Process, true, &[(Metric::SwitchCost, 2_000)]);
        }
        let mut m = meta();
        m.unavailable = unavailable;
        Report::between(&a, &b, m)
    }

    fn row<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines()
            .find(|r| r.starts_with(prefix))
            .unwrap()
            .split_whitespace()
            .collect()
    }

    #[test]
    fn one_row_per_class_with_shares_and_percentiles() {
        let text = render(
            &sample_report(MetricSet::ALL, vec![]),
            MetricSet::NONE.with(Metric::SwitchCost),
        );
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("1010 switches in 1.00s (1010.0/s)"), "{}", rows[0]);
        assert!(
            rows[1].starts_with("kernel's own switch count unavailable"),
            "{}",
            rows[1]
        );
        assert!(rows[2].split_whitespace().eq([
            "class", "switches", "rate/s", "vol%", "pre%", "cost-n", "min", "p50", "p90", "p99", "p99.9", "max"
        ]));
        let thread = row(&text, "thread");
        assert_eq!(&thread[..6], ["thread", "1000", "1000.0", "90.0", "10.0", "1000"]);
        assert_eq!(thread[6], "299ns"); // min 300 reported as the midpoint of its bucket [296, 304)
        let idle = row(&text, "idle");
        assert_eq!(&idle[..6], ["idle", "0", "0.0", "-", "-", "0"]);
        assert!(text.contains("switch_cost_ns, class thread (1000 samples):"));
        assert!(text.contains("switch_cost_ns, class process (10 samples):"));
        assert!(!text.contains("class idle ("));
        // The other metrics get a table each, no histogram unless asked.
        assert!(text.contains("\noncpu_ns: from the task's switch-in"));
        assert!(text.contains("\nrunq_latency_ns: "));
        assert!(!text.contains("oncpu_ns, class"));
        let oncpu = &text[text.find("oncpu_ns:").unwrap()..];
        // 5000 ns reported as the midpoint of its bucket [4992, 5120): 5.05us.
        assert_eq!(row(oncpu, "thread")[..3], ["thread", "1000", "5.05us"]);
    }

    #[test]
    fn the_kernels_count_is_beside_tracers_and_says_whole_host_under_filters() {
        let mut a = Snapshot::empty(1, MetricSet::NONE);
        a.kernel_switches = Some(100);
        let mut b = a.clone();
        b.taken_ns = 1_000_000_000;
        b.kernel_switches = Some(1_112);
        b.record(0, Class::Thread, true, &[]);
        let text = render(&Report::between(&a, &b, meta()), MetricSet::NONE);
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("1 switches in"), "{text}");
        assert_eq!(
            rows[1],
            "kernel counted 1012 switches in the same span (/proc/stat ctxt)"
        );
        let mut m = meta();
        m.filtered = true;
        let text = render(&Report::between(&a, &b, m), MetricSet::NONE);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .contains("1012 switches in the same span on the whole host")
        );
        a.kernel_switches = None;
        let text = render(&Report::between(&a, &b, meta()), MetricSet::NONE);
        assert!(text.lines().nth(1).unwrap().contains("unavailable"), "{text}");
    }

    #[test]
    fn unavailable_switch_cost_is_dashes_and_a_reason() {
        let measured = MetricSet::ALL.without(Metric::SwitchCost);
        let text = render(
            &sample_report(measured, vec![(Metric::SwitchCost, "no sched_exit_tp".into())]),
            MetricSet::ALL,
        );
        assert_eq!(&row(&text, "thread")[5..], ["-"; 7]);
        assert!(text.contains("switch cost unavailable: no sched_exit_tp"));
        assert!(!text.contains("switch_cost_ns, class"));
        assert!(text.contains("oncpu_ns, class thread (1000 samples):"));
    }

    #[test]
    fn unselected_metrics_are_left_out() {
        let mut r = sample_report(MetricSet::NONE, vec![]);
        r.meta.selected = MetricSet::NONE;
        let text = render(&r, MetricSet::ALL);
        assert!(row(&text, "class").eq(&["class", "switches", "rate/s", "vol%", "pre%"]));
        assert!(!text.contains("_ns"));
    }
}
