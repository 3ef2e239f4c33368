//! The rounds of the overhead benchmark. In each round every variant gets a
//! slot: an untraced run of both ping-pongs, then the variant is started, and
//! both ping-pongs run beside it with statistics off (the wall-clock runs),
//! then once more, shorter, with BPF run-time statistics on (the program-time
//! runs). Each round starts one variant further on, so that none always
//! follows the same one.

use std::{fs, path::Path};

use anyhow::bail;

use super::{
    beside::{self, NotReady},
    procstat,
    progs::{self, StatsOn},
    variants::{PERF_DATA, Variant},
};

/// The two workloads, both pinned to one CPU: (label, `--kind`).
pub const WORKLOADS: [(&str, &str); 2] = [("process", "processes"), ("thread", "threads")];

/// What one slot measured for one workload.
#[derive(Clone, Debug)]
pub struct Run {
    /// The wall-clock run beside the variant (for untraced: the base run).
    pub elapsed_ns: f64,
    /// The untraced run just before it.
    pub base_ns: f64,
    /// The base run's switches, by the workload's own count.
    pub switches: f64,
    /// Share of the other CPUs busy during the wall-clock run.
    pub others_busy: f64,
    /// The variant's BPF program time per switch of the machine (`ctxt`),
    /// from the program-time run; NaN for untraced and perf.
    pub prog_ns_per_switch: f64,
    /// The variant's programs in the program-time run.
    pub progs: Vec<progs::Prog>,
}

impl Run {
    pub fn ratio(&self) -> f64 {
        self.elapsed_ns / self.base_ns
    }

    pub fn added_ns_per_switch(&self) -> f64 {
        (self.elapsed_ns - self.base_ns) / self.switches
    }
}

/// Everything the rounds measured.
pub struct Samples {
    /// The variants that ran (those that could not start are left out).
    pub variants: Vec<&'static Variant>,
    /// runs[workload][variant][slot]: for untraced, one per slot of the round.
    pub runs: Vec<Vec<Vec<Run>>>,
}

/// How the rounds are run.
pub struct Plan<'a> {
    pub tracer: &'a Path,
    pub rounds: usize,
    pub round_trips: u64,
    pub cpu: usize,
}

/// A wall-clock run of workload `kind` with the other CPUs' busy share.
fn timed(plan: &Plan, kind: &str) -> anyhow::Result<(f64, f64, f64)> {
    let a = procstat::read()?;
    let (ns, switches) = beside::workload(plan.tracer, kind, plan.cpu, plan.round_trips)?;
    let b = procstat::read()?;
    Ok((ns, switches, procstat::others_busy(&a, &b, plan.cpu)))
}

/// A shorter run with statistics on: the variant's program time per switch,
/// and its programs.
fn program_time(
    plan: &Plan,
    kind: &str,
    stats: &mut StatsOn,
    existing: &progs::Listing,
) -> anyhow::Result<(f64, Vec<progs::Prog>)> {
    let before = stats.listing()?;
    beside::workload(plan.tracer, kind, plan.cpu, (plan.round_trips / 4).max(5_000))?;
    let after = stats.listing()?;
    let added = progs::added(existing, &before, &after);
    let ns: u64 = added.iter().map(|p| p.run_ns).sum();
    // Per switch of the machine: the programs ran on every CPU's switches.
    let per_switch = if added.is_empty() {
        f64::NAN
    } else {
        ns as f64 / after.ctxt.saturating_sub(before.ctxt).max(1) as f64
    };
    Ok((per_switch, added))
}

/// One slot: the untraced runs, then variant `v` started and measured.
/// `Ok(None)` when the variant exited before attaching.
fn slot(plan: &Plan, v: &Variant) -> anyhow::Result<Option<[(Run, Run); 2]>> {
    let mut bases = Vec::new();
    for (_, kind) in WORKLOADS {
        bases.push(timed(plan, kind)?);
    }
    let mut stats = StatsOn::start(plan.tracer)?;
    let existing = stats.listing()?;
    let running = match beside::start(v, plan.tracer, &mut stats, &existing) {
        Ok(b) => b,
        Err(NotReady::Exited(why)) => {
            eprintln!("xtask: `{}`: {why}", v.name);
            return Ok(None);
        }
        Err(NotReady::Failed(e)) => return Err(e),
    };
    drop(stats);
    let mut timed_runs = Vec::new();
    for (_, kind) in WORKLOADS {
        timed_runs.push(timed(plan, kind)?);
    }
    let mut stats = StatsOn::start(plan.tracer)?;
    let mut prog_runs = Vec::new();
    for (_, kind) in WORKLOADS {
        prog_runs.push(program_time(plan, kind, &mut stats, &existing)?);
    }
    drop(stats);
    drop(running);
    // What the variant wrote goes to disk now, not during the next one.
    let _ = fs::remove_file(PERF_DATA);
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    let pair = |w: usize| {
        let (base_ns, switches, base_busy) = bases[w];
        let (elapsed_ns, _, others_busy) = timed_runs[w];
        let (prog_ns_per_switch, progs) = prog_runs[w].clone();
        let untraced = Run {
            elapsed_ns: base_ns,
            base_ns,
            switches,
            others_busy: base_busy,
            prog_ns_per_switch: f64::NAN,
            progs: Vec::new(),
        };
        let traced = Run {
            elapsed_ns,
            base_ns,
            switches,
            others_busy,
            prog_ns_per_switch,
            progs,
        };
        (untraced, traced)
    };
    Ok(Some([pair(0), pair(1)]))
}

/// Runs every round.
pub fn measure(plan: &Plan, mut variants: Vec<&'static Variant>) -> anyhow::Result<Samples> {
    let mut runs = vec![vec![Vec::new(); variants.len()]; WORKLOADS.len()];
    for round in 0..plan.rounds {
        let mut k = 0;
        while k + 1 < variants.len() {
            let i = 1 + (k + round) % (variants.len() - 1);
            let Some(pairs) = slot(plan, variants[i])? else {
                // A variant that cannot run here (e.g. no sched_exit_tp) is
                // left out of every round, not measured as untraced.
                if round > 0 {
                    bail!(
                        "`{}` ran in an earlier round but not in round {}",
                        variants[i].name,
                        round + 1
                    );
                }
                variants.remove(i);
                for w in &mut runs {
                    w.remove(i);
                }
                continue;
            };
            for (w, (untraced, traced)) in pairs.into_iter().enumerate() {
                runs[w][0].push(untraced);
                runs[w][i].push(traced);
            }
            k += 1;
        }
        eprintln!("xtask: round {}/{} done", round + 1, plan.rounds);
    }
    Ok(Samples { variants, runs })
}
