//! What one report says, computed from the difference of two snapshots, and
//! its renderings: a table with log2 histograms, or JSON.

pub mod json;
pub mod log2;
pub mod table;

use tracer_common::{
    Class,
    class::{PREEMPTED, VOLUNTARY},
    hist::bucket_value,
};

use crate::{
    snapshot::metrics::{Metric, MetricSet},
    snapshot::{ClassHistogram, Snapshot},
};

/// Where the numbers came from, for the report header.
#[derive(Clone, Debug)]
pub struct Meta {
    pub kernel_release: String,
    pub probe: crate::probe::ProbeKind,
    /// The metrics the user asked for (the others are left out of reports).
    pub selected: MetricSet,
    /// Metrics asked for that this run cannot give, and why.
    pub unavailable: Vec<(Metric, String)>,
    /// How many processes a per-process breakdown shows (`--top`).
    pub top: usize,
    /// Some filter is on: tracer's total is part of the host's.
    pub filtered: bool,
}

impl Meta {
    pub fn why_unavailable(&self, metric: Metric) -> Option<&str> {
        self.unavailable
            .iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, why)| why.as_str())
    }
}

/// What each metric measures, for reports and help.
pub fn meaning(metric: Metric) -> &'static str {
    match metric {
        Metric::SwitchCost => {
            "from sched_switch (prev leaving) until the incoming task runs again on the same CPU \
             (sched_exit_tp); includes the part of the tracer's own probes that runs between their timestamps"
        }
        Metric::Runq => {
            "from the moment the task became runnable (woken, or switched out still runnable) until switched in: \
             waiting for a CPU"
        }
        Metric::Offcpu => "from the task's last switch-out until its switch-in: away from the CPU, blocked or waiting",
        Metric::Oncpu => "from the task's switch-in until its switch-out: the slice it ran",
    }
}

/// One report: everything that happened in `duration_ns`.
#[derive(Clone, Debug)]
pub struct Report {
    pub duration_ns: u64,
    pub meta: Meta,
    /// One entry per class, in [`Class::ALL`] order.
    pub classes: Vec<ClassReport>,
    /// With `--per-process`: the top processes by switches out.
    pub processes: Option<Processes>,
    /// Classic-tracepoint probe: switches left out of every class because
    /// the incoming task's process was unknown.
    pub unresolved: u64,
    /// With `--self-stats`: what tracer cost during the report's span.
    pub own: Option<crate::snapshot::OwnCost>,
    /// Switches the kernel counted in the same span, all CPUs and tasks
    /// (/proc/stat `ctxt`); `None` if unreadable.
    pub kernel_switches: Option<u64>,
}

/// The per-process breakdown.
#[derive(Clone, Debug)]
pub struct Processes {
    /// The top processes, most switches out first.
    pub top: Vec<ProcessReport>,
    /// Processes with switches in the span, shown or not.
    pub total: usize,
    /// Per-process counts the kernel could not keep (its map was full).
    pub dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessReport {
    pub tgid: u32,
    /// Process name: of its first task seen, or as of its last exec.
    pub comm: Vec<u8>,
    /// Switches taking one of its tasks out, by class index.
    pub out: [u64; 4],
    /// Switches bringing one of its tasks in, by class index.
    pub r#in: [u64; 4],
}

impl ProcessReport {
    pub fn switches_out(&self) -> u64 {
        self.out.iter().sum()
    }
}

/// A task name for a terminal: printable ASCII as is, anything else escaped
/// (`\xNN`), so a hostile name cannot move the cursor or fake a line.
pub fn escape_comm(comm: &[u8]) -> String {
    let mut out = String::new();
    for &b in comm {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[derive(Clone, Debug)]
pub struct ClassReport {
    pub class: Class,
    pub voluntary: u64,
    pub preempted: u64,
    /// Per metric (index = `Metric as usize`); `None` when not measured.
    pub latencies: [Option<Latency>; 4],
}

impl ClassReport {
    pub fn switches(&self) -> u64 {
        self.voluntary + self.preempted
    }

    pub fn latency(&self, metric: Metric) -> Option<&Latency> {
        self.latencies[metric as usize].as_ref()
    }
}

/// Summary of one latency distribution. Percentiles, min and max are within
/// 1 % of the exact values (bucket midpoints, see `tracer_common::hist`); the
/// mean is exact.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    pub count: u64,
    /// `None` when `count` is 0.
    pub stats: Option<LatencyStats>,
    /// Samples per power-of-two range `[2^k, 2^(k+1))`: `(k, count)`, exact.
    pub log2: Vec<(u32, u64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LatencyStats {
    pub min: u64,
    pub mean: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn from_histogram(h: &ClassHistogram) -> Self {
        let count = h.count();
        let log2 = log2::slots(h);
        if count == 0 {
            return Self {
                count,
                stats: None,
                log2,
            };
        }
        let hdr = h.to_hdr();
        let lowest = h.buckets.iter().position(|&n| n > 0).unwrap_or(0);
        let highest = h.buckets.iter().rposition(|&n| n > 0).unwrap_or(0);
        let (min, max) = (bucket_value(lowest), bucket_value(highest));
        // HdrHistogram cannot hold 0 (0 ns samples go in at 1) and answers a
        // bucket's highest equivalent value: no percentile lies outside the
        // samples' own range.
        let q = |q: f64| hdr.value_at_quantile(q).clamp(min, max);
        Self {
            count,
            stats: Some(LatencyStats {
                min,
                mean: h.sum_ns / count,
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p999: q(0.999),
                max,
            }),
            log2,
        }
    }
}

impl Report {
    /// The report for what happened between two snapshots.
    pub fn between(earlier: &Snapshot, now: &Snapshot, meta: Meta) -> Self {
        let delta = now.since(earlier);
        let counts = delta.counts();
        let classes = Class::ALL
            .iter()
            .map(|&class| ClassReport {
                class,
                voluntary: counts.by_class[class.index()][VOLUNTARY],
                preempted: counts.by_class[class.index()][PREEMPTED],
                latencies: Metric::ALL.map(|m| delta.latency(m).map(|h| Latency::from_histogram(&h[class.index()]))),
            })
            .collect();
        let processes = delta.procs.as_ref().map(|procs| {
            let mut all: Vec<ProcessReport> = procs
                .iter()
                .map(|(&tgid, p)| ProcessReport {
                    tgid,
                    comm: p.comm.iter().copied().take_while(|&b| b != 0).collect(),
                    out: p.out,
                    r#in: p.r#in,
                })
                .collect();
            all.sort_by(|a, b| b.switches_out().cmp(&a.switches_out()).then(a.tgid.cmp(&b.tgid)));
            let total = all.len();
            all.truncate(meta.top);
            Processes {
                top: all,
                total,
                dropped: delta.procs_dropped,
            }
        });
        Self {
            duration_ns: now.taken_ns.saturating_sub(earlier.taken_ns),
            meta,
            classes,
            processes,
            unresolved: delta.unresolved,
            own: delta.own,
            kernel_switches: delta.kernel_switches,
        }
    }

    /// Sum of all classes.
    pub fn switches(&self) -> u64 {
        self.classes.iter().map(ClassReport::switches).sum()
    }

    pub fn class(&self, class: Class) -> &ClassReport {
        &self.classes[class.index()]
    }
}

/// A duration in ns, human-readable with three significant digits.
pub fn fmt_ns(ns: u64) -> String {
    let v = ns as f64;
    let (value, unit) = if ns < 1_000 {
        return format!("{ns}ns");
    } else if ns < 1_000_000 {
        (v / 1e3, "us")
    } else if ns < 1_000_000_000 {
        (v / 1e6, "ms")
    } else {
        (v / 1e9, "s")
    };
    if value >= 100.0 {
        format!("{value:.0}{unit}")
    } else if value >= 10.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.2}{unit}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn meta() -> Meta {
        Meta {
            kernel_release: "6.18.0-test".into(),
            probe: crate::probe::ProbeKind::TpBtf,
            selected: MetricSet::ALL,
            unavailable: Vec::new(),
            top: 20,
            filtered: false,
        }
    }

    /// A deterministic pseudo-random sequence (xorshift), so failures repeat.
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Log-uniform in [lo, hi).
        pub(crate) fn log_uniform(&mut self, lo: f64, hi: f64) -> u64 {
            let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            (lo * (hi / lo).powf(u)) as u64
        }
    }

    fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn check_within_2_percent(samples: &[u64]) {
        let mut h = ClassHistogram::default();
        for &s in samples {
            h.record(s);
        }
        let lat = Latency::from_histogram(&h);
        let st = lat.stats.unwrap();
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let checks = [
            ("p50", st.p50, exact_quantile(&sorted, 0.5)),
            ("p90", st.p90, exact_quantile(&sorted, 0.9)),
            ("p99", st.p99, exact_quantile(&sorted, 0.99)),
            ("p999", st.p999, exact_quantile(&sorted, 0.999)),
            ("min", st.min, sorted[0]),
            ("max", st.max, *sorted.last().unwrap()),
        ];
        for (name, got, exact) in checks {
            let err = got.abs_diff(exact) as f64 / exact as f64;
            assert!(
                err <= 0.02,
                "{name}: got {got}, exact {exact}, error {:.3}%",
                err * 100.0
            );
        }
        let exact_mean = samples.iter().sum::<u64>() / samples.len() as u64;
        assert_eq!(st.mean, exact_mean);
        assert_eq!(lat.count, samples.len() as u64);
    }

    #[test]
    fn percentiles_within_2_percent_from_100ns_to_10s() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Spread over the whole range.
        let wide: Vec<u64> = (0..200_000).map(|_| rng.log_uniform(100.0, 10e9)).collect();
        check_within_2_percent(&wide);
        // Narrow, like a switch-cost distribution, with a long tail.
        let narrow: Vec<u64> = (0..100_000)
            .map(|i| {
                if i % 1000 == 0 {
                    rng.log_uniform(10e3, 5e6)
                } else {
                    rng.log_uniform(250.0, 450.0)
                }
            })
            .collect();
        check_within_2_percent(&narrow);
        // Few samples, each percentile a different sample.
        for n in [1, 2, 3, 10, 999] {
            let few: Vec<u64> = (0..n).map(|_| rng.log_uniform(100.0, 10e9)).collect();
            check_within_2_percent(&few);
        }
    }

    #[test]
    fn percentiles_stay_within_min_and_max() {
        // All samples at 0 ns: HdrHistogram holds them at 1.
        let mut h = ClassHistogram::default();
        for _ in 0..3 {
            h.record(0);
        }
        let s = Latency::from_histogram(&h).stats.unwrap();
        assert_eq!((s.min, s.p50, s.p999, s.max), (0, 0, 0, 0));
        // Spread samples: every percentile between min and max.
        let mut h = ClassHistogram::default();
        for ns in [0, 5, 900, 1_000_000, 3_000_000_000] {
            h.record(ns);
        }
        let s = Latency::from_histogram(&h).stats.unwrap();
        for p in [s.p50, s.p90, s.p99, s.p999] {
            assert!(s.min <= p && p <= s.max, "{s:?}");
        }
    }

    #[test]
    fn empty_histogram_has_no_stats() {
        let lat = Latency::from_histogram(&ClassHistogram::default());
        assert_eq!(lat.count, 0);
        assert!(lat.stats.is_none());
        assert!(lat.log2.is_empty());
    }

    #[test]
    fn report_between_snapshots() {
        let a = Snapshot::empty(2, MetricSet::ALL);
        let mut b = a.clone();
        b.taken_ns = 2_000_000_000;
        for _ in 0..3 {
            b.record(0, Class::Thread, true, &[(Metric::SwitchCost, 320)]);
        }
        b.record(1, Class::Process, false, &[(Metric::SwitchCost, 400)]);
        let r = Report::between(&a, &b, meta());
        assert_eq!(r.duration_ns, 2_000_000_000);
        assert_eq!(r.switches(), 4);
        assert_eq!(r.class(Class::Thread).voluntary, 3);
        assert_eq!(r.class(Class::Process).preempted, 1);
        assert_eq!(r.class(Class::Idle).switches(), 0);
        let cost = r.class(Class::Thread).latency(Metric::SwitchCost).unwrap();
        assert_eq!(cost.count, 3);
        assert_eq!(r.class(Class::Thread).latency(Metric::Runq).unwrap().count, 0);
    }

    #[test]
    fn per_process_top_n_by_switches_out() {
        let mut a = Snapshot::empty(1, MetricSet::NONE);
        a.procs = Some(Default::default());
        let mut b = a.clone();
        let procs = b.procs.as_mut().unwrap();
        for tgid in 1..=30u32 {
            let mut p = crate::snapshot::ProcSnapshot::default();
            p.comm[..4].copy_from_slice(b"proc");
            p.out[Class::Thread.index()] = u64::from(tgid);
            p.r#in[Class::Process.index()] = 1;
            procs.insert(tgid, p);
        }
        let mut m = meta();
        m.top = 5;
        let r = Report::between(&a, &b, m);
        let p = r.processes.unwrap();
        assert_eq!(p.total, 30);
        assert_eq!(p.top.iter().map(|p| p.tgid).collect::<Vec<_>>(), [30, 29, 28, 27, 26]);
        assert_eq!(p.top[0].comm, b"proc");
    }

    #[test]
    fn hostile_names_are_escaped() {
        assert_eq!(escape_comm(b"bash"), "bash");
        assert_eq!(escape_comm(b"a\x1b[2Jb\n"), "a\\x1b[2Jb\\x0a");
        assert_eq!(escape_comm(&[0xff, b'x']), "\\xffx");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_ns(0), "0ns");
        assert_eq!(fmt_ns(999), "999ns");
        assert_eq!(fmt_ns(1_234), "1.23us");
        assert_eq!(fmt_ns(45_600), "45.6us");
        assert_eq!(fmt_ns(456_000), "456us");
        assert_eq!(fmt_ns(12_300_000), "12.3ms");
        assert_eq!(fmt_ns(2_500_000_000), "2.50s");
    }
}
