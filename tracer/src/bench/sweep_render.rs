//! `tracer bench --sweep` output: the matrix as a table with verdict lines
//! in words, or JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{
    render::{MEANING, fmt_size},
    sweep::{Cell, Figures, Sweep},
};
use crate::report::fmt_ns;

/// Above this, a process/thread difference counts as one (the run-to-run
/// noise of these figures on a shared host is a few percent).
const MARGIN: f64 = 0.05;

/// Linux's address-space ids per CPU on x86 (`TLB_NR_DYN_ASIDS`).
const ASIDS: usize = 6;

fn ratio(p: f64, t: f64) -> Option<f64> {
    (t > 0.0 && p > 0.0).then(|| p / t)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

fn fmt_f(ns: f64) -> String {
    if ns < 0.0 {
        format!("-{}", fmt_ns((-ns) as u64))
    } else {
        fmt_ns(ns as u64)
    }
}

/// (thread, process) figures of a cell whose checks passed.
fn both(cell: &Cell) -> Option<(Figures, Figures)> {
    Some((cell.figures(&cell.thread)?, cell.figures(&cell.process)?))
}

fn range(values: &[f64]) -> String {
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    format!("{lo:.2}x to {hi:.2}x")
}

/// Whether the process/thread ratio of the time per switch steps up once
/// the ring has more processes than the CPU keeps address-space ids for.
fn asid_step(sweep: &Sweep) -> String {
    let mut steps = Vec::new();
    let mut seen = false;
    for &ws in sweep.options.working_sets.iter().filter(|ws| **ws > 0) {
        let ratios = |keep: &dyn Fn(usize) -> bool| -> Vec<f64> {
            sweep
                .cells
                .iter()
                .filter(|c| c.working_set == ws && keep(c.ring))
                .filter_map(|c| both(c).and_then(|(t, p)| ratio(p.per_switch_ns, t.per_switch_ns)))
                .collect()
        };
        let (under, over) = (ratios(&|r| r <= ASIDS - 2), ratios(&|r| r > ASIDS));
        if under.is_empty() || over.is_empty() {
            continue;
        }
        seen = true;
        let under_max = under.iter().copied().fold(f64::MIN, f64::max);
        let over_min = over.iter().copied().fold(f64::MAX, f64::min);
        if over_min > under_max * (1.0 + MARGIN) {
            steps.push(format!("{} ({} -> {})", fmt_size(ws), range(&under), range(&over)));
        }
    }
    if !seen {
        return format!(
            "the rings do not straddle {ASIDS} tasks with a working set, so no address-space-id step can show"
        );
    }
    if steps.is_empty() {
        format!(
            "no step when the ring passes {ASIDS} processes: the process/thread ratio with more tasks stays within {:.0} % of the smaller rings'",
            MARGIN * 100.0
        )
    } else {
        format!(
            "a step when the ring passes {ASIDS} processes, at working sets {}: beyond {ASIDS} the CPU can no longer keep each process's TLB entries tagged",
            steps.join(", ")
        )
    }
}

/// The verdict lines, or `None` when a check failed or switch cost is
/// unavailable.
pub fn verdicts(sweep: &Sweep) -> Option<Vec<String>> {
    if sweep.cells.iter().any(|c| !c.problems().is_empty()) {
        return None;
    }
    let figures: Vec<(&Cell, Figures, Figures)> = sweep
        .cells
        .iter()
        .filter_map(|c| both(c).map(|(t, p)| (c, t, p)))
        .collect();
    if figures.is_empty() {
        return None;
    }
    let direct: Vec<f64> = figures
        .iter()
        .filter_map(|(_, t, p)| ratio(p.direct_p50 as f64, t.direct_p50 as f64))
        .collect();
    let total: Vec<f64> = figures
        .iter()
        .filter_map(|(_, t, p)| ratio(p.per_switch_ns, t.per_switch_ns))
        .collect();
    // Beyond noise: every process run slower than every thread run, or the
    // other way round.
    let dearer: Vec<&(&Cell, Figures, Figures)> = figures
        .iter()
        .filter(|(_, t, p)| p.per_switch_min_ns > t.per_switch_max_ns)
        .collect();
    let cheaper = figures
        .iter()
        .filter(|(_, t, p)| p.per_switch_max_ns < t.per_switch_min_ns)
        .count();
    // What processes pay beyond the switch itself; the touching-alone
    // baseline cancels out of the difference.
    let gap = |(_, t, p): &&(&Cell, Figures, Figures)| (p.indirect_ns - t.indirect_ns) / t.per_switch_ns;
    let gap_line = match dearer.iter().max_by(|a, b| gap(a).total_cmp(&gap(b))) {
        Some(&&(cell, t, p)) => format!(
            "the largest gap beyond the switch itself, where every process run was slower than every thread run: ring {}, working set {}: {} per switch more for processes ({:.0} % of a thread's time per switch)",
            cell.ring,
            fmt_size(cell.working_set),
            fmt_f(p.indirect_ns - t.indirect_ns),
            100.0 * (p.indirect_ns - t.indirect_ns) / t.per_switch_ns
        ),
        None => "in no cell was every process run slower than every thread run".into(),
    };
    let mut lines = vec![
        format!(
            "direct cost (the switch itself, p50): a process switch costs {} a thread switch",
            range(&direct)
        ),
        format!(
            "time per switch with the touching: processes {} threads (medians); {gap_line}",
            range(&total)
        ),
    ];
    lines.push(match sweep.pcid {
        Some(true) => format!("this CPU has PCID: Linux tags TLB entries with {ASIDS} address-space ids per CPU, so a switch between up to {ASIDS} processes need not flush the TLB"),
        Some(false) => "this CPU has no PCID: every switch to another process flushes the TLB".into(),
        None => "whether this CPU tags TLB entries by address space is not known (no x86 flags)".into(),
    });
    lines.push(asid_step(sweep));
    lines.push(format!(
        "the claim \"a thread switch is cheaper than a process switch\": the switch itself, always, by the p50s above; with the touching, processes were slower in every run in {} of {} cells, faster in every run in {cheaper}, and the runs overlapped in the rest",
        dearer.len(),
        figures.len()
    ));
    Some(lines)
}

/// The human report.
pub fn table(sweep: &Sweep) -> String {
    let o = &sweep.options;
    let mut out = format!(
        "tracer bench --sweep: rings of tasks passing a token on CPU {}, touching one word per {} of each task's working set; {} runs per cell; kernel {}\n\n",
        o.cpu,
        if o.stride >= 4096 { "page" } else { "cache line" },
        o.runs,
        sweep.kernel_release
    );
    let _ = writeln!(
        out,
        "{:>4} {:>9} | {:>8} {:>8} {:>8} {:>9} | {:>8} {:>8} {:>8} {:>9} | {:>7} {:>7} {:>9}",
        "ring",
        "work set",
        "t/switch",
        "t p50",
        "t p99",
        "t indir",
        "p/switch",
        "p p50",
        "p p99",
        "p indir",
        "p/t sw",
        "p/t p50",
        "p-t indir"
    );
    for cell in &sweep.cells {
        let _ = write!(out, "{:>4} {:>9} |", cell.ring, fmt_size(cell.working_set));
        let Some((t, p)) = both(cell) else {
            let _ = writeln!(out, " (switch cost not measured)");
            continue;
        };
        for f in [t, p] {
            let _ = write!(
                out,
                " {:>8} {:>8} {:>8} {:>9} |",
                fmt_f(f.per_switch_ns),
                fmt_ns(f.direct_p50),
                fmt_ns(f.direct_p99),
                fmt_f(f.indirect_ns)
            );
        }
        let _ = writeln!(
            out,
            " {:>7} {:>7} {:>9}",
            fmt_ratio(ratio(p.per_switch_ns, t.per_switch_ns)),
            fmt_ratio(ratio(p.direct_p50 as f64, t.direct_p50 as f64)),
            fmt_f(p.indirect_ns - t.indirect_ns)
        );
    }
    let _ = writeln!(
        out,
        "\nt = threads of one process, p = processes; /switch: loop time over the kernel's count of switches; p50/p99: {MEANING}; indir: /switch minus the same touching without switching minus p50: the token's pipe syscalls and wakeup (the same for both kinds) plus cache and TLB refill, so p-t indir is what processes pay more in refill\n"
    );
    if let Some(why) = &sweep.switch_cost_unavailable {
        let _ = writeln!(out, "switch cost unavailable: {why}");
    }
    let problems: Vec<String> = sweep.cells.iter().flat_map(Cell::problems).collect();
    if problems.is_empty() {
        for line in verdicts(sweep).unwrap_or_default() {
            let _ = writeln!(out, "- {line}");
        }
    } else {
        let _ = writeln!(out, "no verdict: the checks failed:");
        for p in problems {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

fn figures_json(cell: &Cell, w: &super::Workload) -> Value {
    let f = cell.figures(w);
    json!({
        "per_switch_ns": f.map(|f| f.per_switch_ns),
        "switch_cost_ns": f.map(|f| json!({"p50": f.direct_p50, "p99": f.direct_p99})),
        "indirect_ns": f.map(|f| f.indirect_ns),
        "switches": w.switches(),
        "expected_class_share": w.expected_share(),
        "problems": w.problems(cell.laps, cell.ring as u64),
    })
}

/// The JSON report (one object).
pub fn json(sweep: &Sweep) -> String {
    let cells: Vec<Value> = sweep
        .cells
        .iter()
        .map(|c| {
            let ratios = both(c).map(|(t, p)| {
                json!({"per_switch": ratio(p.per_switch_ns, t.per_switch_ns),
                       "switch_cost_p50": ratio(p.direct_p50 as f64, t.direct_p50 as f64),
                       "indirect_difference_ns": p.indirect_ns - t.indirect_ns})
            });
            json!({
                "ring": c.ring,
                "working_set_bytes": c.working_set,
                "laps": c.laps,
                "touch_alone_ns": c.touch_alone_ns,
                "thread": figures_json(c, &c.thread),
                "process": figures_json(c, &c.process),
                "process_over_thread": ratios,
            })
        })
        .collect();
    let o = &sweep.options;
    json!({
        "kernel_release": sweep.kernel_release,
        "cpu": o.cpu,
        "runs": o.runs,
        "touch": if o.stride >= 4096 { "page" } else { "line" },
        "pcid": sweep.pcid,
        "switch_cost_unavailable": sweep.switch_cost_unavailable,
        "cells": cells,
        "verdicts": verdicts(sweep),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bench::sweep::fake, workload::PingPong};

    /// Threads 4 us per switch plus the touching; processes the same up to
    /// 4 tasks, 25 % more beyond (an address-space-id step).
    fn stepped(kind: PingPong, ring: usize, ws: usize) -> f64 {
        let t = 4000.0 + ws as f64 / 64.0;
        if kind == PingPong::Processes && ring > 6 {
            1.25 * t
        } else {
            t
        }
    }

    #[test]
    fn verdicts_see_the_step_and_count_cells_beyond_noise() {
        let sweep = fake(&[2, 4, 8, 16], &[0, 65536], stepped);
        let v = verdicts(&sweep).unwrap();
        assert!(v[0].contains("1.29x to 1.29x"), "{v:?}");
        assert!(
            v[3].starts_with("a step when the ring passes 6 processes, at working sets 64 KiB"),
            "{v:?}"
        );
        assert!(
            v[4].contains("slower in every run in 4 of 8 cells, faster in every run in 0"),
            "{v:?}"
        );
        let flat = fake(&[2, 4, 8, 16], &[0, 65536], |_, _, ws| 4000.0 + ws as f64 / 64.0);
        assert!(
            verdicts(&flat).unwrap()[3].starts_with("no step"),
            "{:?}",
            verdicts(&flat)
        );
        assert!(verdicts(&fake(&[2, 4], &[65536], stepped)).unwrap()[3].contains("do not straddle"));
    }

    #[test]
    fn no_verdict_when_a_check_fails() {
        let mut sweep = fake(&[2, 8], &[0], stepped);
        sweep.cells[1].process.runs[0].outcome.stayed_on_cpu = false;
        assert!(verdicts(&sweep).is_none());
        let table = table(&sweep);
        assert!(
            table.contains(
                "no verdict: the checks failed:\n  ring 8, working set 0 B: process run 1: pinning did not hold"
            ),
            "{table}"
        );
    }

    #[test]
    fn json_ratios_are_the_cells_own() {
        let sweep = fake(&[2, 8], &[0, 4096], stepped);
        let v: Value = serde_json::from_str(&json(&sweep)).unwrap();
        let cells = v["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 4);
        for c in cells {
            let (t, p) = (
                c["thread"]["per_switch_ns"].as_f64().unwrap(),
                c["process"]["per_switch_ns"].as_f64().unwrap(),
            );
            assert_eq!(c["process_over_thread"]["per_switch"].as_f64().unwrap(), p / t);
            let p50 = c["thread"]["switch_cost_ns"]["p50"].as_u64().unwrap();
            assert!(p50.abs_diff(450) <= 450 / 64, "450 ns, within its bucket: {p50}");
        }
        assert_eq!(v["verdicts"].as_array().unwrap().len(), 5);
    }
}
