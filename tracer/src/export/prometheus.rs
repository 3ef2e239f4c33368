//! `--prometheus ADDR`: the cumulative counters and histograms (since tracing
//! started) in the OpenMetrics text format, rendered by `prometheus-client`.
//!
//! The histograms' `le` bounds are fixed: four log-spaced bounds per power of
//! two of nanoseconds, from 64 ns to about 29 s, each rounded to an edge of the
//! kernel's own log-linear buckets. They are the same on every host (a fleet's
//! histograms add up), and every kernel bucket falls wholly under one bound, so
//! the exported counts are exact, not interpolated.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
    registry::{Registry, Unit},
};
use tracer_common::{
    Class,
    class::{PREEMPTED, VOLUNTARY},
    hist::{NUM_BUCKETS, bucket_range},
};

use super::label::Label;
use crate::{snapshot::ClassHistogram, snapshot::Snapshot, snapshot::metrics::Metric};

/// The two exposition formats: OpenMetrics for clients that ask for it (as
/// Prometheus does), the classic text format 0.0.4 for everything else (curl,
/// `promtool check metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text,
}

impl Format {
    /// The format for a request's `Accept` header.
    pub fn for_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.to_ascii_lowercase().contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The classic text format of an OpenMetrics exposition: a counter's HELP
/// and TYPE name its `_total` series, and there are no UNIT or EOF lines.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Multipliers (in 64ths) of a power of two: 2^0, 2^0.25, 2^0.5, 2^0.75 rounded
/// to a 64th; all even, so each is also a 32nd: an edge of the kernel's
/// buckets from 64 ns up.
const STEPS: [u64; 4] = [64, 76, 90, 108];
/// Powers of two covered: 2^6 ns (64 ns) to 2^34 ns (17 s) and its steps (to
/// 29 s), below the kernel's last bucket (which also holds what is clamped).
const FIRST_POWER: u32 = 6;
const LAST_POWER: u32 = 34;
/// Number of finite `le` bounds.
pub const NUM_BOUNDS: usize = (LAST_POWER - FIRST_POWER + 1) as usize * STEPS.len();

/// The finite `le` bounds, in ns, ascending: 64, 76, 90, 108, 128, 152, ...
pub fn bounds_ns() -> [u64; NUM_BOUNDS] {
    std::array::from_fn(|i| {
        let power = FIRST_POWER + (i / STEPS.len()) as u32;
        STEPS[i % STEPS.len()] << (power - FIRST_POWER)
    })
}

/// Samples per `le` bucket (not cumulative), the `+Inf` one last: a kernel
/// bucket `[low, high)` counts under the first bound `>= high - 1`, the
/// largest value it holds. The kernel's last bucket also holds everything
/// clamped from above, so it only counts under `+Inf`.
pub fn buckets(h: &ClassHistogram) -> Vec<(f64, u64)> {
    let bounds = bounds_ns();
    let mut out: Vec<(f64, u64)> = bounds.iter().map(|&b| (b as f64 / 1e9, 0)).collect();
    out.push((f64::INFINITY, 0));
    let mut slot = 0;
    for (i, &n) in h.buckets.iter().enumerate() {
        let (_, high) = bucket_range(i);
        while slot < NUM_BOUNDS && bounds[slot] < high - 1 {
            slot += 1;
        }
        let slot = if i == NUM_BUCKETS - 1 { NUM_BOUNDS } else { slot };
        out[slot].1 += n;
    }
    out
}

/// The metric name (before the `_seconds` unit suffix) of a latency.
pub fn name(metric: Metric) -> &'static str {
    match metric {
        Metric::SwitchCost => "tracer_switch_cost",
        Metric::Runq => "tracer_runq_latency",
        Metric::Offcpu => "tracer_offcpu",
        Metric::Oncpu => "tracer_oncpu",
    }
}

/// Holds the latest cumulative totals and renders them on request.
pub struct Exporter {
    registry: Registry,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    labels: Vec<Label>,
    /// What happened since tracing started, as of the last [`Exporter::publish`].
    totals: Mutex<Option<Snapshot>>,
}

impl Exporter {
    pub fn new(labels: Vec<Label>) -> Self {
        let shared = Arc::new(Shared {
            labels,
            totals: Mutex::new(None),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Totals(shared.clone())));
        Self { registry, shared }
    }

    /// Replaces the totals served with `since_start` (cumulative).
    pub fn publish(&self, since_start: Snapshot) {
        *self.shared.totals.lock().unwrap_or_else(PoisonError::into_inner) = Some(since_start);
    }

    /// The exposition, in `format`.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail, nor can our collector.
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("rendering into a String");
        match format {
            Format::OpenMetrics => out,
            Format::Text => to_text_format(&out),
        }
    }
}

#[derive(Debug)]
struct Totals(Arc<Shared>);

impl Totals {
    fn labels(&self, class: Class, kind: Option<&str>) -> Vec<(String, String)> {
        let mut set = vec![("class".to_owned(), class.name().to_owned())];
        if let Some(kind) = kind {
            set.push(("kind".to_owned(), kind.to_owned()));
        }
        set.extend(self.0.labels.iter().map(|l| (l.key.clone(), l.value.clone())));
        set
    }
}

impl Collector for Totals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let totals = self.0.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(totals) = totals.as_ref() else {
            return Ok(());
        };
        let counts = totals.counts();
        {
            let mut metric = encoder.encode_descriptor(
                "tracer_switches",
                "Context switches since tracing started, by class (idle, kernel, thread: same process, \
                 process: different processes) and kind (voluntary: prev blocked; preempted)",
                None,
                MetricType::Counter,
            )?;
            for class in Class::ALL {
                for (kind, index) in [("voluntary", VOLUNTARY), ("preempted", PREEMPTED)] {
                    let labels = self.labels(class, Some(kind));
                    let n = counts.by_class[class.index()][index];
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, u64, f64>(&n, None)?;
                }
            }
        }
        let unit = Unit::Seconds;
        for metric in Metric::ALL {
            let Some(hists) = totals.latency(metric) else {
                continue;
            };
            let help = format!("{}: {}", metric.key(), crate::report::meaning(metric));
            let mut family = encoder.encode_descriptor(name(metric), &help, Some(&unit), MetricType::Histogram)?;
            for class in Class::ALL {
                let h = &hists[class.index()];
                let labels = self.labels(class, None);
                family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                    h.sum_ns as f64 / 1e9,
                    h.count(),
                    &buckets(h),
                    None,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::hist::{MAX_VALUE, bucket_index};

    use super::*;
    use crate::{report::tests::Rng, snapshot::metrics::MetricSet};

    #[test]
    fn bounds_are_log_spaced_kernel_bucket_edges() {
        let b = bounds_ns();
        assert_eq!(&b[..6], &[64, 76, 90, 108, 128, 152]);
        assert_eq!(b[NUM_BOUNDS - 1], 108 << 28);
        for w in b.windows(2) {
            let ratio = w[1] as f64 / w[0] as f64;
            // 2^0.25 = 1.189, within what rounding to a 64th allows.
            assert!((1.15..1.23).contains(&ratio), "{} -> {}: {ratio}", w[0], w[1]);
        }
        for &bound in &b {
            assert_eq!(bucket_range(bucket_index(bound)).0, bound, "{bound} is a bucket edge");
        }
    }

    /// The cumulative count under each bound is exact: every sample below
    /// the bound, none above it (a sample exactly on a bound of 128 ns or more
    /// may count under the next one: the kernel bucket starting there is wider
    /// than 1 ns).
    #[test]
    fn buckets_count_exactly() {
        let mut rng = Rng(0x5eed);
        let mut h = ClassHistogram::default();
        let mut samples = Vec::new();
        for _ in 0..20_000 {
            let v = rng.log_uniform(20.0, 2e11);
            samples.push(v);
            h.record(v);
        }
        // Values exactly on bounds, and one past them.
        for &b in &bounds_ns()[..40] {
            for v in [b, b + 1] {
                samples.push(v);
                h.record(v);
            }
        }
        let buckets = buckets(&h);
        assert_eq!(buckets.len(), NUM_BOUNDS + 1);
        let mut cumulative = 0;
        for &(le, n) in &buckets {
            cumulative += n;
            if le.is_infinite() {
                assert_eq!(cumulative, samples.len() as u64);
                continue;
            }
            let le_ns = (le * 1e9).round() as u64;
            let below = samples.iter().filter(|&&v| v < le_ns && v < MAX_VALUE).count() as u64;
            let at_most = samples.iter().filter(|&&v| v <= le_ns && v < MAX_VALUE).count() as u64;
            assert!(
                below <= cumulative && cumulative <= at_most,
                "le={le}: {below} <= {cumulative} <= {at_most}"
            );
        }
    }

    #[test]
    fn renders_openmetrics_with_labels() {
        let mut s = Snapshot::empty(2, MetricSet::NONE.with(Metric::SwitchCost).with(Metric::Oncpu));
        s.record(0, Class::Thread, true, &[(Metric::SwitchCost, 400)]);
        s.record(1, Class::Thread, false, &[(Metric::SwitchCost, 500)]);
        s.record(1, Class::Process, true, &[(Metric::SwitchCost, 2_000_000)]);
        let labels = vec![super::super::label::parse("app=we \"quote\" \\").unwrap()];
        let exporter = Exporter::new(labels);
        assert_eq!(
            exporter.render(Format::OpenMetrics),
            "# EOF\n",
            "nothing before the first publish"
        );
        exporter.publish(s);
        let text = exporter.render(Format::OpenMetrics);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
                .to_owned()
        };
        let app = r#"app="we \"quote\" \\""#;
        assert_eq!(
            line(r#"tracer_switches_total{class="thread",kind="voluntary""#),
            format!(r#"tracer_switches_total{{class="thread",kind="voluntary",{app}}} 1"#)
        );
        assert!(line("# TYPE tracer_switch_cost_seconds histogram").len() > 10);
        assert!(text.contains("# UNIT tracer_switch_cost_seconds seconds"));
        assert_eq!(
            line(r#"tracer_switch_cost_seconds_count{class="thread""#),
            format!(r#"tracer_switch_cost_seconds_count{{class="thread",{app}}} 2"#)
        );
        // Bounds around them: 360, 432, 512 ns.
        let bucket = |le: &str| {
            line(&format!(
                r#"tracer_switch_cost_seconds_bucket{{le="{le}",class="thread",{app}}}"#
            ))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
        };
        assert_eq!(bucket("3.6e-7"), 0);
        assert_eq!(bucket("4.32e-7"), 1);
        assert_eq!(bucket("5.12e-7"), 2);
        assert_eq!(bucket("+Inf"), 2);
        // Metrics not measured are left out.
        assert!(!text.contains("tracer_runq_latency"));
        assert!(text.contains("tracer_oncpu_seconds_count"));
        assert!(text.ends_with("# EOF\n"));

        let classic = exporter.render(Format::Text);
        assert!(
            classic.starts_with("# HELP tracer_switches_total Context switches"),
            "{classic}"
        );
        assert!(classic.contains("\n# TYPE tracer_switches_total counter\n"));
        assert!(classic.contains("\n# TYPE tracer_switch_cost_seconds histogram\n"));
        assert!(!classic.contains("# UNIT") && !classic.contains("# EOF"));
        let samples = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(samples(&classic), samples(&text), "the same samples in both formats");
    }

    #[test]
    fn negotiates_the_format() {
        assert_eq!(Format::for_accept(None), Format::Text);
        assert_eq!(Format::for_accept(Some("*/*")), Format::Text);
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::for_accept(Some(prometheus)), Format::OpenMetrics);
    }
}
