//! `tracer bench` output: a side-by-side table with a verdict, or JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Bench, PERCENTILES, Spread, Workload};
use crate::report::fmt_ns;

/// What the measured switch cost includes, printed with every result.
pub const MEANING: &str = "switch cost = sched_switch -> the incoming task runs again on the same CPU (sched_exit_tp); \
it includes the tracer's own two probes, the same for both workloads";

/// The verdict, or `None` when the checks failed or switch cost is unavailable.
pub fn verdict(bench: &Bench) -> Option<String> {
    if !bench.problems().is_empty() {
        return None;
    }
    let ratio = bench.process_over_thread_p50()?;
    let (t, p) = (bench.thread.cost(|s| s.p50)?, bench.process.cost(|s| s.p50)?);
    let mut v = format!(
        "a process switch costs {ratio:.2}x a thread switch here (p50, median of {} runs)",
        bench.options.runs
    );
    if t.overlaps(&p) {
        let _ = write!(
            v,
            "; the difference is within the run-to-run spread (thread p50 {}..{}, process p50 {}..{})",
            fmt_ns(t.min),
            fmt_ns(t.max),
            fmt_ns(p.min),
            fmt_ns(p.max)
        );
    }
    Some(v)
}

fn spread(s: Option<Spread>) -> String {
    match s {
        Some(s) => format!("{} ({}..{})", fmt_ns(s.median), fmt_ns(s.min), fmt_ns(s.max)),
        None => "-".into(),
    }
}

/// A size for people: `64 KiB`, `1 MiB`, `512 B`.
pub fn fmt_size(bytes: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// The human report.
pub fn table(bench: &Bench) -> String {
    let o = &bench.options;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "tracer bench: {} runs of {} round trips each, via {}, working set {}, pinned to CPU {}; kernel {}",
        o.runs,
        o.round_trips,
        o.via.name(),
        fmt_size(o.working_set),
        o.cpu,
        bench.kernel_release
    );
    let row = |out: &mut String, label: &str, f: &dyn Fn(&Workload) -> String| {
        let line = format!("{label:<24} {:<28} {}", f(&bench.thread), f(&bench.process));
        let _ = writeln!(out, "{}", line.trim_end());
    };
    row(&mut out, "", &|w| w.name().to_owned());
    row(&mut out, "switches per run", &|w| w.switches().to_string());
    row(&mut out, "classified as expected", &|w| {
        format!("{:.1} % {}", w.expected_share() * 100.0, w.expected().name())
    });
    row(&mut out, "round trip", &|w| spread(w.rtt_ns()));
    for (_, label, pick) in PERCENTILES {
        row(&mut out, label, &|w| spread(w.cost(pick)));
    }
    let _ = writeln!(out, "(median over runs, min..max in brackets)");
    match &bench.switch_cost_unavailable {
        Some(why) => {
            let _ = writeln!(out, "switch cost unavailable: {why}");
        }
        None => {
            let _ = writeln!(out, "{MEANING}");
        }
    }
    let problems = bench.problems();
    if problems.is_empty() {
        if let Some(v) = verdict(bench) {
            let _ = writeln!(out, "verdict: {v}");
        }
    } else {
        let _ = writeln!(out, "no verdict: the measurement did not check out:");
        for p in problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    out
}

#[derive(Serialize)]
struct JsonBench<'a> {
    runs: u32,
    round_trips: u64,
    working_set_bytes: usize,
    via: &'static str,
    cpu: usize,
    kernel_release: &'a str,
    thread: JsonWorkload,
    process: JsonWorkload,
    /// `null` when the checks failed or switch cost is unavailable.
    process_over_thread_p50: Option<f64>,
    verdict: Option<String>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct JsonWorkload {
    switches: u64,
    expected_class: &'static str,
    /// Lowest share over runs of the kernel-counted switches in the expected class.
    expected_class_share: f64,
    rtt_ns: Option<JsonSpread>,
    /// Percentile (`p50`, `p90`, `p99`, `p999`) -> spread over runs.
    switch_cost_ns: Option<std::collections::BTreeMap<&'static str, JsonSpread>>,
}

#[derive(Serialize)]
struct JsonSpread {
    min: u64,
    median: u64,
    max: u64,
}

impl From<Spread> for JsonSpread {
    fn from(s: Spread) -> Self {
        Self {
            min: s.min,
            median: s.median,
            max: s.max,
        }
    }
}

fn json_workload(w: &Workload) -> JsonWorkload {
    let cost = PERCENTILES
        .iter()
        .map(|&(key, _, pick)| Some((key, w.cost(pick)?.into())))
        .collect();
    JsonWorkload {
        switches: w.switches(),
        expected_class: w.expected().name(),
        expected_class_share: (w.expected_share() * 1e4).round() / 1e4,
        rtt_ns: w.rtt_ns().map(Into::into),
        switch_cost_ns: cost,
    }
}

/// One line of JSON.
pub fn json(bench: &Bench) -> String {
    let problems = bench.problems();
    let o = &bench.options;
    let j = JsonBench {
        runs: o.runs,
        round_trips: o.round_trips,
        working_set_bytes: o.working_set,
        via: o.via.name(),
        cpu: o.cpu,
        kernel_release: &bench.kernel_release,
        thread: json_workload(&bench.thread),
        process: json_workload(&bench.process),
        process_over_thread_p50: if problems.is_empty() {
            bench.process_over_thread_p50().map(|r| (r * 1e4).round() / 1e4)
        } else {
            None
        },
        verdict: verdict(bench),
        problems,
    };
    // Plain structs of numbers and strings: serializing cannot fail.
    serde_json::to_string(&j).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{
        bench::{Options, Run},
        report::Latency,
        snapshot::ClassHistogram,
        workload::{Outcome, PingPong, Via},
    };

    fn run(p50: u64, class: usize, switches: u64) -> Run {
        let mut h = ClassHistogram::default();
        for _ in 0..switches {
            h.record(p50);
        }
        let mut on_cpu = [0; 4];
        on_cpu[class] = switches;
        Run {
            outcome: Outcome {
                round_trips: 1000,
                elapsed: std::time::Duration::from_millis(7),
                voluntary: switches,
                involuntary: 0,
                stayed_on_cpu: true,
                ..Default::default()
            },
            on_cpu,
            cost: Some(Latency::from_histogram(&h)),
            cost_histogram: Some(h),
        }
    }

    fn bench(thread_p50s: &[u64], process_p50s: &[u64]) -> Bench {
        Bench {
            options: Options {
                runs: thread_p50s.len() as u32,
                round_trips: 1000,
                working_set: 0,
                via: Via::Pipe,
                cpu: 1,
            },
            kernel_release: "6.18.0-test".into(),
            thread: Workload {
                kind: PingPong::Threads,
                runs: thread_p50s.iter().map(|&p| run(p, 2, 2000)).collect(),
            },
            process: Workload {
                kind: PingPong::Processes,
                runs: process_p50s.iter().map(|&p| run(p, 3, 2000)).collect(),
            },
            switch_cost_unavailable: None,
        }
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(fmt_size(0), "0 B");
        assert_eq!(fmt_size(65536), "64 KiB");
        assert_eq!(fmt_size(1 << 20), "1 MiB");
        assert_eq!(fmt_size(1000), "1000 B");
    }

    #[test]
    fn verdict_with_ratio_and_spread() {
        let b = bench(&[300, 310, 320], &[400, 380, 390]);
        let v = verdict(&b).unwrap();
        assert!(
            v.starts_with("a process switch costs 1.26x a thread switch here (p50, median of 3 runs)"),
            "{v}"
        );
        assert!(!v.contains("spread"));
        let b = bench(&[300, 310, 400], &[320, 330, 340]);
        assert!(verdict(&b).unwrap().contains("within the run-to-run spread"));
    }

    #[test]
    fn no_verdict_when_a_check_fails() {
        let mut b = bench(&[300, 310, 320], &[400, 380, 390]);
        b.process.runs[1].on_cpu = [0, 0, 1500, 500]; // misclassified
        b.thread.runs[0].outcome.stayed_on_cpu = false;
        assert!(verdict(&b).is_none());
        let text = table(&b);
        assert!(text.contains("no verdict"), "{text}");
        assert!(text.contains("process run 2: only 500 of the kernel's 2000 switches were classified `process`"));
        assert!(text.contains("thread run 1: pinning did not hold"));
        let v: Value = serde_json::from_str(&json(&b)).unwrap();
        assert!(v["verdict"].is_null());
        assert!(v["process_over_thread_p50"].is_null());
        assert_eq!(v["problems"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn json_schema() {
        let v: Value = serde_json::from_str(&json(&bench(&[300, 310, 320], &[400, 380, 390]))).unwrap();
        assert_eq!(v["runs"], 3);
        assert_eq!(v["round_trips"], 1000);
        assert_eq!(v["working_set_bytes"], 0);
        assert_eq!(v["via"], "pipe");
        assert_eq!(v["thread"]["switches"], 2000);
        assert_eq!(v["thread"]["rtt_ns"]["median"], 7000);
        let p50 = &v["process"]["switch_cost_ns"]["p50"];
        assert!(p50["min"].as_u64() <= p50["median"].as_u64() && p50["median"].as_u64() <= p50["max"].as_u64());
        let ratio = v["process_over_thread_p50"].as_f64().unwrap();
        assert!((ratio - 390.0 / 310.0).abs() < 0.02, "{ratio}");
        assert!(v["problems"].as_array().unwrap().is_empty());
    }
}
