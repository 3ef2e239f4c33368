//! The JSON report: one object per report, on one line.

use serde::Serialize;
use tracer_common::Class;

use super::{ClassReport, Latency, Report};

#[derive(Serialize)]
struct JsonReport<'a> {
    duration_ns: u64,
    switches: u64,
    kernel_release: &'a str,
    probe: &'a str,
    classes: JsonClasses,
    /// Metrics that are `null` because this kernel or run cannot give them, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<Unavailable<'a>>,
}

#[derive(Serialize)]
struct Unavailable<'a> {
    switch_cost_ns: &'a str,
}

#[derive(Serialize)]
struct JsonClasses {
    thread: JsonClass,
    process: JsonClass,
    kernel: JsonClass,
    idle: JsonClass,
}

#[derive(Serialize)]
struct JsonClass {
    switches: u64,
    voluntary: u64,
    preempted: u64,
    switch_cost_ns: Option<JsonLatency>,
}

/// Every field but `count` is `null` when there were no samples.
#[derive(Serialize)]
struct JsonLatency {
    count: u64,
    min: Option<u64>,
    mean: Option<u64>,
    p50: Option<u64>,
    p90: Option<u64>,
    p99: Option<u64>,
    p999: Option<u64>,
    max: Option<u64>,
}

impl From<&Latency> for JsonLatency {
    fn from(l: &Latency) -> Self {
        let s = l.stats.as_ref();
        Self {
            count: l.count,
            min: s.map(|s| s.min),
            mean: s.map(|s| s.mean),
            p50: s.map(|s| s.p50),
            p90: s.map(|s| s.p90),
            p99: s.map(|s| s.p99),
            p999: s.map(|s| s.p999),
            max: s.map(|s| s.max),
        }
    }
}

impl From<&ClassReport> for JsonClass {
    fn from(c: &ClassReport) -> Self {
        Self {
            switches: c.switches(),
            voluntary: c.voluntary,
            preempted: c.preempted,
            switch_cost_ns: c.switch_cost.as_ref().map(JsonLatency::from),
        }
    }
}

/// One line of JSON (no trailing newline).
pub fn render(report: &Report) -> String {
    let class = |c: Class| JsonClass::from(report.class(c));
    let json = JsonReport {
        duration_ns: report.duration_ns,
        switches: report.switches(),
        kernel_release: &report.meta.kernel_release,
        probe: report.meta.probe,
        classes: JsonClasses {
            thread: class(Class::Thread),
            process: class(Class::Process),
            kernel: class(Class::Kernel),
            idle: class(Class::Idle),
        },
        unavailable: report
            .meta
            .switch_cost_unavailable
            .as_deref()
            .map(|why| Unavailable { switch_cost_ns: why }),
    };
    // Serializing plain structs of numbers and strings cannot fail.
    serde_json::to_string(&json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::{report::tests::meta, snapshot::Snapshot};

    #[test]
    fn schema_sums_and_nulls() {
        let a = Snapshot::empty(2, true);
        let mut b = a.clone();
        b.taken_ns = 500_000_000;
        for i in 0..100 {
            b.record(i % 2, Class::Thread, i % 4 != 0, Some(320));
        }
        b.record(1, Class::Kernel, false, Some(900));
        let v: Value = serde_json::from_str(&render(&Report::between(&a, &b, meta()))).unwrap();
        assert_eq!(v["duration_ns"], 500_000_000);
        assert_eq!(v["switches"], 101);
        assert_eq!(v["kernel_release"], "6.18.0-test");
        assert_eq!(v["probe"], "tp_btf");
        let t = &v["classes"]["thread"];
        assert_eq!(t["switches"], 100);
        assert_eq!(t["voluntary"], 75);
        assert_eq!(t["preempted"], 25);
        let cost = &t["switch_cost_ns"];
        assert_eq!(cost["count"], 100);
        for key in ["min", "mean", "p50", "p90", "p99", "p999", "max"] {
            let x = cost[key].as_u64().unwrap();
            assert!(x.abs_diff(320) <= 3, "{key}={x}");
        }
        // A class without switches: zero counts, a histogram with no samples.
        assert_eq!(v["classes"]["idle"]["switches"], 0);
        assert_eq!(v["classes"]["idle"]["switch_cost_ns"]["count"], 0);
        assert!(v["classes"]["idle"]["switch_cost_ns"]["p50"].is_null());
        let sum: u64 = ["thread", "process", "kernel", "idle"]
            .iter()
            .map(|c| v["classes"][c]["switches"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, 101);
        assert!(v.get("unavailable").is_none());
    }

    #[test]
    fn metric_the_kernel_cannot_give_is_null() {
        let a = Snapshot::empty(1, false);
        let mut b = a.clone();
        b.record(0, Class::Process, true, None);
        let mut m = meta();
        m.switch_cost_unavailable = Some("no sched_exit_tp".into());
        let v: Value = serde_json::from_str(&render(&Report::between(&a, &b, m))).unwrap();
        assert!(v["classes"]["process"]["switch_cost_ns"].is_null());
        assert_eq!(v["classes"]["process"]["switches"], 1);
        assert_eq!(v["unavailable"]["switch_cost_ns"], "no sched_exit_tp");
    }
}
