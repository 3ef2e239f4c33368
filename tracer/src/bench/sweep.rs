//! `tracer bench --sweep`: lmbench's lat_ctx matrix. Rings of tasks pass a
//! token on one pinned CPU, threads of one process against separate
//! processes, for each ring size and working set; per cell the direct
//! switch cost from tracer's programs, the time per switch, the same
//! touching without switching, and the self-checks of `tracer bench`.

use super::{BenchError, Run, Spread, Workload, measure, switch_cost_probes};
use crate::workload::{self, PingPong, Ring};

/// What the sweep was asked for.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub rings: Vec<usize>,
    pub working_sets: Vec<usize>,
    /// Bytes between the words touched: 64 (a line) or 4096 (a page).
    pub stride: usize,
    pub runs: u32,
    /// Laps per run; `None`: sized per cell (see `laps`).
    pub laps: Option<u64>,
    pub cpu: usize,
}

/// Switches per run when the laps are sized per cell: enough for stable
/// percentiles, fewer where each switch touches a lot.
fn laps(opts: &SweepOptions, ring: usize, working_set: usize) -> u64 {
    opts.laps.unwrap_or_else(|| {
        let switches = ((1u64 << 30) / working_set.max(1) as u64).clamp(2_000, 20_000);
        (switches / ring as u64).max(20)
    })
}

/// One cell: a ring size and working set, both kinds.
#[derive(Clone, Debug)]
pub struct Cell {
    pub ring: usize,
    pub working_set: usize,
    pub laps: u64,
    /// ns per working set touched by one thread, no switching, median over
    /// runs (the same touching for both kinds).
    pub touch_alone_ns: f64,
    pub thread: Workload,
    pub process: Workload,
}

/// One kind's figures in a cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    /// Loop time over the kernel's count of switches, median over runs.
    pub per_switch_ns: f64,
    /// The same, fastest and slowest run.
    pub per_switch_min_ns: f64,
    pub per_switch_max_ns: f64,
    /// Switch cost from tracer's programs, all runs together.
    pub direct_p50: u64,
    pub direct_p99: u64,
    /// Time per switch beyond the touching and the switch itself: the
    /// token's syscalls and wakeup (the same for both kinds), and cache and
    /// TLB refill.
    pub indirect_ns: f64,
}

impl Cell {
    pub fn kinds(&self) -> [&Workload; 2] {
        [&self.thread, &self.process]
    }

    pub fn figures(&self, w: &Workload) -> Option<Figures> {
        // In ps, so that the median of integers keeps sub-ns precision.
        let per_switch_ps = w
            .runs
            .iter()
            .map(|r| (r.outcome.elapsed.as_nanos() * 1000 / u128::from(r.outcome.switches().max(1))) as u64);
        let spread = Spread::of(per_switch_ps.collect())?;
        let per_switch_ns = spread.median as f64 / 1000.0;
        let cost = crate::report::Latency::from_histogram(&w.cost_histogram()?).stats?;
        Some(Figures {
            per_switch_ns,
            per_switch_min_ns: spread.min as f64 / 1000.0,
            per_switch_max_ns: spread.max as f64 / 1000.0,
            direct_p50: cost.p50,
            direct_p99: cost.p99,
            indirect_ns: per_switch_ns - self.touch_alone_ns - cost.p50 as f64,
        })
    }

    /// The self-checks of both kinds (class, counts, pinning).
    pub fn problems(&self) -> Vec<String> {
        let at = format!("ring {}, working set {} B", self.ring, self.working_set);
        self.kinds()
            .iter()
            .flat_map(|w| w.problems(self.laps, self.ring as u64))
            .map(|p| format!("{at}: {p}"))
            .collect()
    }
}

/// The whole sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub options: SweepOptions,
    pub kernel_release: String,
    pub cells: Vec<Cell>,
    /// Whether the CPU has process-context ids (x86 `pcid`); `None` when
    /// /proc/cpuinfo does not say (other architectures).
    pub pcid: Option<bool>,
    pub switch_cost_unavailable: Option<String>,
}

/// Runs every cell under freshly attached probes.
pub fn run(options: SweepOptions, mut progress: impl FnMut(&str)) -> Result<Sweep, BenchError> {
    let mut probes = switch_cost_probes()?;
    let mut cells = Vec::new();
    let total = options.rings.len() * options.working_sets.len();
    for &working_set in &options.working_sets {
        for &tasks in &options.rings {
            progress(&format!(
                "cell {}/{total}: ring {tasks}, working set {working_set} B",
                cells.len() + 1
            ));
            let laps = laps(&options, tasks, working_set);
            let ring = |kind| Ring {
                kind,
                tasks,
                cpu: options.cpu,
                laps,
                working_set,
                stride: options.stride,
            };
            let mut workloads =
                [PingPong::Threads, PingPong::Processes].map(|kind| Workload { kind, runs: Vec::new() });
            let mut alone = Vec::new();
            for run in 0..options.runs {
                // Alternate the order so that neither kind always goes first.
                for k in [run as usize % 2, 1 - run as usize % 2] {
                    let kind = workloads[k].kind;
                    let measured: Run = measure(&mut probes, options.cpu, kind, || workload::run_ring(&ring(kind)))?;
                    workloads[k].runs.push(measured);
                }
                let ns = workload::touch_alone(&ring(PingPong::Threads)).map_err(|source| BenchError::Workload {
                    kind: "touching",
                    source,
                })?;
                alone.push((ns * 1000.0) as u64);
            }
            let [thread, process] = workloads;
            cells.push(Cell {
                ring: tasks,
                working_set,
                laps,
                touch_alone_ns: Spread::of(alone).map_or(0.0, |s| s.median as f64 / 1000.0),
                thread,
                process,
            });
        }
    }
    Ok(Sweep {
        options,
        kernel_release: crate::kernel::release(),
        cells,
        pcid: pcid(),
        switch_cost_unavailable: probes.unavailable.into_iter().next().map(|(_, why)| why),
    })
}

/// The `pcid` flag of /proc/cpuinfo, where it has x86 flags.
fn pcid() -> Option<bool> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags"))?;
    Some(flags.split_whitespace().any(|f| f == "pcid"))
}

/// A sweep with made-up numbers, for rendering tests: per (ring, working
/// set), `per_switch(kind, ring, ws)` ns per switch over 3 runs (spread
/// +-1 %), p50 switch cost 450 ns for threads and 580 for processes.
#[cfg(test)]
pub fn fake(rings: &[usize], sets: &[usize], per_switch: impl Fn(PingPong, usize, usize) -> f64) -> Sweep {
    use crate::{snapshot::ClassHistogram, workload::Outcome};
    let laps = 1000;
    let cells = sets
        .iter()
        .flat_map(|&ws| rings.iter().map(move |&ring| (ring, ws)))
        .map(|(ring, ws)| {
            let workload = |kind: PingPong| {
                let switches = laps * ring as u64;
                let runs = [0.99, 1.0, 1.01]
                    .iter()
                    .map(|f| {
                        let mut h = ClassHistogram::default();
                        for _ in 0..switches {
                            h.record(if kind == PingPong::Threads { 450 } else { 580 });
                        }
                        let mut on_cpu = [0; 4];
                        on_cpu[kind.class().index()] = switches;
                        Run {
                            outcome: Outcome {
                                round_trips: laps,
                                elapsed: std::time::Duration::from_nanos(
                                    (f * per_switch(kind, ring, ws) * switches as f64) as u64,
                                ),
                                voluntary: switches,
                                stayed_on_cpu: true,
                                ..Outcome::default()
                            },
                            on_cpu,
                            cost: None,
                            cost_histogram: Some(h),
                        }
                    })
                    .collect();
                Workload { kind, runs }
            };
            Cell {
                ring,
                working_set: ws,
                laps,
                touch_alone_ns: ws as f64 / 64.0,
                thread: workload(PingPong::Threads),
                process: workload(PingPong::Processes),
            }
        })
        .collect();
    Sweep {
        options: SweepOptions {
            rings: rings.to_vec(),
            working_sets: sets.to_vec(),
            stride: 64,
            runs: 3,
            laps: Some(laps),
            cpu: 1,
        },
        kernel_release: "6.18.0-test".into(),
        cells,
        pcid: Some(true),
        switch_cost_unavailable: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_shrink_with_the_working_set_and_the_ring() {
        let opts = SweepOptions {
            rings: vec![2],
            working_sets: vec![0],
            stride: 64,
            runs: 1,
            laps: None,
            cpu: 0,
        };
        assert_eq!(laps(&opts, 2, 0), 10_000);
        assert_eq!(laps(&opts, 32, 0), 625);
        assert_eq!(laps(&opts, 2, 4 << 20), 1_000);
        assert_eq!(laps(&opts, 32, 4 << 20), 62);
        assert_eq!(laps(&SweepOptions { laps: Some(7), ..opts }, 32, 0), 7);
    }
}
