//! `tracer bench`: is a thread switch cheaper than a process switch on this
//! host? Runs pinned ping-pongs of two threads and of two processes under the
//! tracer's own kernel programs, checks that what it measured is what it
//! meant to measure, and compares the switch costs.

pub mod render;
pub mod sweep;
pub mod sweep_render;

use tracer_common::Class;

use crate::{
    probe::{ProbeError, ProbeOptions, Probes},
    report::Latency,
    snapshot::ClassHistogram,
    snapshot::metrics::{Metric, MetricSet},
    workload::{self, Outcome, PingPong, Spec, Via},
};

/// What the user asked for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub runs: u32,
    pub round_trips: u64,
    pub working_set: usize,
    pub via: Via,
    pub cpu: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("the {kind} workload failed: {source}")]
    Workload { kind: &'static str, source: std::io::Error },
}

/// Picks one statistic out of a latency summary.
pub type Pick = fn(&crate::report::LatencyStats) -> u64;

/// The switch-cost percentiles the benchmark compares: JSON key, label, pick.
pub const PERCENTILES: [(&str, &str, Pick); 4] = [
    ("p50", "switch cost p50", |s| s.p50),
    ("p90", "switch cost p90", |s| s.p90),
    ("p99", "switch cost p99", |s| s.p99),
    ("p999", "switch cost p99.9", |s| s.p999),
];

/// min / median / max over runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

impl Spread {
    /// `None` for no values. The median of an even count is the lower middle.
    pub fn of(mut values: Vec<u64>) -> Option<Self> {
        values.sort_unstable();
        Some(Self {
            min: *values.first()?,
            median: values[(values.len() - 1) / 2],
            max: *values.last()?,
        })
    }

    /// Whether the two ranges overlap.
    pub fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

/// One run of one workload.
#[derive(Clone, Debug)]
pub struct Run {
    pub outcome: Outcome,
    /// Switches the tracer counted on the workload's CPU, per class.
    pub on_cpu: [u64; 4],
    /// Switch cost of the expected class on the workload's CPU.
    pub cost: Option<Latency>,
    /// The same, as the histogram it was read from.
    pub cost_histogram: Option<ClassHistogram>,
}

/// One workload over all runs.
#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: PingPong,
    pub runs: Vec<Run>,
}

impl Workload {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    pub fn expected(&self) -> Class {
        self.kind.class()
    }

    /// The kernel's count of the workload's switches, median over runs.
    pub fn switches(&self) -> u64 {
        Spread::of(self.runs.iter().map(|r| r.outcome.switches()).collect()).map_or(0, |s| s.median)
    }

    pub fn rtt_ns(&self) -> Option<Spread> {
        Spread::of(self.runs.iter().map(|r| r.outcome.rtt_ns()).collect())
    }

    /// Spread over runs of one switch-cost percentile; `None` if not measured.
    pub fn cost(&self, pick: Pick) -> Option<Spread> {
        let values: Option<Vec<u64>> = self
            .runs
            .iter()
            .map(|r| r.cost.as_ref().and_then(|c| c.stats.as_ref()).map(pick))
            .collect();
        Spread::of(values?)
    }

    /// The switch cost of all runs together; `None` if not measured.
    pub fn cost_histogram(&self) -> Option<ClassHistogram> {
        let mut all = ClassHistogram::default();
        for run in &self.runs {
            let h = run.cost_histogram.as_ref()?;
            for (total, n) in all.buckets.iter_mut().zip(&h.buckets) {
                *total += n;
            }
            all.sum_ns += h.sum_ns;
        }
        Some(all)
    }

    /// Lowest share, over runs, of the kernel-counted switches that the tracer
    /// put in the expected class.
    pub fn expected_share(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.on_cpu[self.expected().index()] as f64 / r.outcome.switches().max(1) as f64)
            .fold(f64::INFINITY, f64::min)
    }

    /// What makes this workload's numbers untrustworthy, if anything: each
    /// round trip must force `tasks` switches (2 for a ping-pong).
    pub fn problems(&self, round_trips: u64, tasks: u64) -> Vec<String> {
        let mut problems = Vec::new();
        let name = self.name();
        let expected = self.expected();
        for (i, r) in self.runs.iter().enumerate() {
            let run = i + 1;
            let truth = r.outcome.switches();
            let seen = r.on_cpu[expected.index()];
            if !r.outcome.stayed_on_cpu {
                problems.push(format!("{name} run {run}: pinning did not hold (a task left its CPU)"));
            }
            if truth + 1 < tasks * round_trips {
                problems.push(format!(
                    "{name} run {run}: the kernel counted {truth} switches for {round_trips} round trips (expected at least {tasks} per round trip)"
                ));
            }
            if (seen as f64) < 0.99 * truth as f64 {
                problems.push(format!(
                    "{name} run {run}: only {seen} of the kernel's {truth} switches were classified `{}` (< 99 %)",
                    expected.name()
                ));
            }
            if seen as f64 > 1.01 * truth as f64 + 200.0 {
                problems.push(format!(
                    "{name} run {run}: the tracer counted {seen} `{}` switches, more than the kernel's {truth}",
                    expected.name()
                ));
            }
        }
        problems
    }
}

/// The whole benchmark.
#[derive(Clone, Debug)]
pub struct Bench {
    pub options: Options,
    pub kernel_release: String,
    pub thread: Workload,
    pub process: Workload,
    /// Why switch cost is missing, when it is.
    pub switch_cost_unavailable: Option<String>,
}

impl Bench {
    /// Every reason not to trust the comparison; empty when it holds.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.thread.problems(self.options.round_trips, 2);
        p.extend(self.process.problems(self.options.round_trips, 2));
        p
    }

    /// Median process p50 over median thread p50.
    pub fn process_over_thread_p50(&self) -> Option<f64> {
        let t = self.thread.cost(|s| s.p50)?.median;
        let p = self.process.cost(|s| s.p50)?.median;
        (t > 0).then(|| p as f64 / t as f64)
    }
}

/// Probes that measure switch cost only, freshly attached.
fn switch_cost_probes() -> Result<Probes, BenchError> {
    Ok(Probes::attach(ProbeOptions {
        metrics: MetricSet::NONE.with(Metric::SwitchCost),
        ..Default::default()
    })?)
}

/// One run of a workload of `kind` on `cpu` (started by `start`), with what
/// the probes saw on that CPU meanwhile.
fn measure(
    probes: &mut Probes,
    cpu: usize,
    kind: PingPong,
    start: impl FnOnce() -> std::io::Result<Outcome>,
) -> Result<Run, BenchError> {
    let cpus = [cpu];
    let before = probes.snapshot_cpus(Some(&cpus))?;
    let outcome = start().map_err(|source| BenchError::Workload {
        kind: kind.name(),
        source,
    })?;
    let after = probes.snapshot_cpus(Some(&cpus))?;
    let delta = after.since(&before);
    let on_cpu = tracer_common::Class::ALL.map(|c| delta.cpu_switches(cpu, c));
    let cost_histogram = delta
        .latency(Metric::SwitchCost)
        .map(|h| h[kind.class().index()].clone());
    let cost = cost_histogram.as_ref().map(Latency::from_histogram);
    Ok(Run {
        outcome,
        on_cpu,
        cost,
        cost_histogram,
    })
}

/// Runs the benchmark under freshly attached probes.
pub fn run(options: Options, mut progress: impl FnMut(&str)) -> Result<Bench, BenchError> {
    let mut probes = switch_cost_probes()?;
    let mut thread = Workload {
        kind: PingPong::Threads,
        runs: Vec::new(),
    };
    let mut process = Workload {
        kind: PingPong::Processes,
        runs: Vec::new(),
    };
    let spec = |kind, round_trips| Spec {
        kind,
        via: options.via,
        cpu: options.cpu,
        round_trips,
        working_set: options.working_set,
    };
    // Warm up both (page faults, caches, CPU frequency), untracked.
    for kind in [PingPong::Threads, PingPong::Processes] {
        let warmup = (options.round_trips / 10).clamp(1, 10_000);
        workload::run(&spec(kind, warmup)).map_err(|source| BenchError::Workload {
            kind: kind.name(),
            source,
        })?;
    }
    for run in 0..options.runs {
        // Alternate the order so that neither workload always goes first.
        let order = if run % 2 == 0 {
            [PingPong::Threads, PingPong::Processes]
        } else {
            [PingPong::Processes, PingPong::Threads]
        };
        for kind in order {
            progress(&format!("run {}/{}: {} ping-pong", run + 1, options.runs, kind.name()));
            let measured = measure(&mut probes, options.cpu, kind, || {
                workload::run(&spec(kind, options.round_trips))
            })?;
            let target = if kind == PingPong::Threads {
                &mut thread
            } else {
                &mut process
            };
            target.runs.push(measured);
        }
    }
    Ok(Bench {
        options,
        kernel_release: crate::kernel::release(),
        thread,
        process,
        switch_cost_unavailable: probes.unavailable.into_iter().next().map(|(_, why)| why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread() {
        assert_eq!(Spread::of(vec![]), None);
        assert_eq!(
            Spread::of(vec![5, 1, 3]),
            Some(Spread {
                min: 1,
                median: 3,
                max: 5
            })
        );
        assert_eq!(
            Spread::of(vec![4, 1, 3, 2]),
            Some(Spread {
                min: 1,
                median: 2,
                max: 4
            })
        );
        let a = Spread {
            min: 1,
            median: 2,
            max: 3,
        };
        assert!(a.overlaps(&Spread {
            min: 3,
            median: 4,
            max: 5
        }));
        assert!(!a.overlaps(&Spread {
            min: 4,
            median: 4,
            max: 5
        }));
    }
}
