//! The JSON report: one object per report, on one line.

use serde::Serialize;
use serde_json::{Map, Value};
use tracer_common::Class;

use super::{ClassReport, Latency, Report};
use crate::snapshot::metrics::MetricSet;

#[derive(Serialize)]
struct JsonReport<'a> {
    duration_ns: u64,
    switches: u64,
    /// Switches the kernel counted in the same span, whole host
    /// (/proc/stat `ctxt`); `null` if unreadable.
    kernel_switches: Option<u64>,
    /// Some filter is on: `switches` is part of `kernel_switches`.
    filtered: bool,
    kernel_release: &'a str,
    probe: &'a str,
    /// `thread`, `process`, `kernel`, `idle`, in that order.
    classes: Map<String, Value>,
    /// Selected metrics that are `null` because this kernel or run cannot
    /// give them, and why.
    #[serde(skip_serializing_if = "Map::is_empty")]
    unavailable: Map<String, Value>,
    /// With `--per-process`: the top processes by switches out.
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<Vec<Value>>,
    /// With `--per-process`: counts lost because the kernel's table was full.
    #[serde(skip_serializing_if = "Option::is_none")]
    processes_dropped: Option<u64>,
    /// Classic-tracepoint probe: switches not in any class (process unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    unresolved: Option<u64>,
    /// With `--self-stats`: what tracer cost during the report.
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    own: Option<Value>,
}

/// `{"thread":N,"process":N,"kernel":N,"idle":N}` from per-class counts.
fn by_class(counts: &[u64; 4]) -> Value {
    let mut m = Map::new();
    for c in [Class::Thread, Class::Process, Class::Kernel, Class::Idle] {
        m.insert(c.name().into(), counts[c.index()].into());
    }
    Value::Object(m)
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

/// One class: counts, then each selected metric (`null` when unavailable).
fn class(c: &ClassReport, selected: MetricSet) -> Value {
    let mut m = Map::new();
    m.insert("switches".into(), c.switches().into());
    m.insert("voluntary".into(), c.voluntary.into());
    m.insert("preempted".into(), c.preempted.into());
    for metric in selected.iter() {
        let v = c.latency(metric).map_or(Value::Null, |l| {
            serde_json::to_value(JsonLatency::from(l)).unwrap_or(Value::Null)
        });
        m.insert(metric.key().into(), v);
    }
    Value::Object(m)
}

/// One line of JSON (no trailing newline).
pub fn render(report: &Report) -> String {
    let selected = report.meta.selected;
    let classes = [Class::Thread, Class::Process, Class::Kernel, Class::Idle]
        .into_iter()
        .map(|c| (c.name().to_owned(), class(report.class(c), selected)))
        .collect();
    let unavailable = report
        .meta
        .unavailable
        .iter()
        .filter(|(m, _)| selected.contains(*m))
        .map(|(m, why)| (m.key().to_owned(), Value::from(why.as_str())))
        .collect();
    let json = JsonReport {
        duration_ns: report.duration_ns,
        switches: report.switches(),
        kernel_switches: report.kernel_switches,
        filtered: report.meta.filtered,
        kernel_release: &report.meta.kernel_release,
        probe: report.meta.probe,
        classes,
        unavailable,
        processes: report.processes.as_ref().map(|p| {
            p.top
                .iter()
                .map(|proc| {
                    let mut m = Map::new();
                    m.insert("tgid".into(), proc.tgid.into());
                    // Valid JSON whatever the bytes: invalid UTF-8 becomes U+FFFD,
                    // control characters are escaped by the serializer.
                    m.insert("comm".into(), String::from_utf8_lossy(&proc.comm).into());
                    m.insert("out".into(), by_class(&proc.out));
                    m.insert("in".into(), by_class(&proc.r#in));
                    Value::Object(m)
                })
                .collect()
        }),
        processes_dropped: report.processes.as_ref().map(|p| p.dropped),
        unresolved: report.meta.counts_unresolved.then_some(report.unresolved),
        own: report.own.as_ref().map(|own| {
            let programs: Vec<Value> = own
                .programs
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "name": p.name,
                        "runs": p.runs,
                        "run_ns": p.run_ns,
                        "mean_ns": p.run_ns.checked_div(p.runs),
                    })
                })
                .collect();
            let maps: Vec<Value> = own
                .maps
                .iter()
                .map(|m| serde_json::json!({"name": m.name, "memlock_bytes": m.bytes}))
                .collect();
            serde_json::json!({"programs": programs, "maps": maps, "user_cpu_ns": own.cpu_ns, "rss_bytes": own.rss_bytes})
        }),
    };
    // Serializing plain structs of numbers and strings cannot fail.
    serde_json::to_string(&json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{report::tests::meta, snapshot::Snapshot, snapshot::metrics::Metric};

    #[test]
    fn schema_sums_and_nulls() {
        let a = Snapshot::empty(2, MetricSet::ALL);
        let mut b = a.clone();
        b.taken_ns = 500_000_000;
        for i in 0..100 {
            b.record(
                i % 2,
                Class::Thread,
                i % 4 != 0,
                &[(Metric::SwitchCost, 320), (Metric::Offcpu, 7000)],
            );
        }
        b.record(1, Class::Kernel, false, &[(Metric::SwitchCost, 900)]);
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
        assert_eq!(t["offcpu_ns"]["count"], 100);
        assert_eq!(t["runq_latency_ns"]["count"], 0);
        let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "switches",
                "voluntary",
                "preempted",
                "switch_cost_ns",
                "runq_latency_ns",
                "offcpu_ns",
                "oncpu_ns"
            ]
        );
        let classes: Vec<&String> = v["classes"].as_object().unwrap().keys().collect();
        assert_eq!(classes, ["thread", "process", "kernel", "idle"]);
    }

    #[test]
    fn unselected_metric_is_absent() {
        let mut m = meta();
        m.selected = MetricSet::NONE.with(Metric::Oncpu);
        let a = Snapshot::empty(1, m.selected);
        let v: Value = serde_json::from_str(&render(&Report::between(&a, &a.clone(), m))).unwrap();
        let keys: Vec<&String> = v["classes"]["thread"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["switches", "voluntary", "preempted", "oncpu_ns"]);
    }

    #[test]
    fn kernel_switches_at_the_top_level() {
        let mut a = Snapshot::empty(1, MetricSet::NONE);
        a.kernel_switches = Some(7);
        let mut b = a.clone();
        b.kernel_switches = Some(50);
        b.record(0, Class::Idle, true, &[]);
        let v: Value = serde_json::from_str(&render(&Report::between(&a, &b, meta()))).unwrap();
        assert_eq!(v["kernel_switches"], 43);
        assert_eq!(v["switches"], 1);
        assert_eq!(v["filtered"], false);
        b.kernel_switches = None;
        let v: Value = serde_json::from_str(&render(&Report::between(&a, &b, meta()))).unwrap();
        assert!(v["kernel_switches"].is_null());
    }

    #[test]
    fn metric_the_kernel_cannot_give_is_null() {
        let mut m = meta();
        m.unavailable = vec![(Metric::SwitchCost, "no sched_exit_tp".into())];
        let a = Snapshot::empty(1, MetricSet::ALL.without(Metric::SwitchCost));
        let mut b = a.clone();
        b.record(0, Class::Process, true, &[]);
        let v: Value = serde_json::from_str(&render(&Report::between(&a, &b, m))).unwrap();
        assert!(v["classes"]["process"]["switch_cost_ns"].is_null());
        assert_eq!(v["classes"]["process"]["switches"], 1);
        assert_eq!(v["unavailable"]["switch_cost_ns"], "no sched_exit_tp");
    }
}
