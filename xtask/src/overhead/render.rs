//! The overhead benchmark's report: a Markdown table per workload with the
//! targets' verdicts below it, and the same as JSON.

use std::{collections::BTreeMap, fmt::Write as _};

use serde_json::{Value, json};

use super::{
    measure::{Plan, Run, Samples, WORKLOADS},
    stats::{Estimate, bootstrap_median, median},
    verdict::{self, Outcome},
};

/// One variant's figures on one workload.
struct Row<'a> {
    key: &'static str,
    name: &'static str,
    runs: &'a [Run],
    elapsed_ns: f64,
    ratio: Estimate,
    added_ns: Estimate,
    prog_ns: f64,
    others_busy: f64,
}

fn rows<'a>(samples: &'a Samples, w: usize) -> Vec<Row<'a>> {
    samples
        .variants
        .iter()
        .zip(&samples.runs[w])
        .map(|(v, runs)| {
            let of = |f: fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
            Row {
                key: v.key,
                name: v.name,
                runs,
                elapsed_ns: median(&of(|r| r.elapsed_ns)),
                ratio: bootstrap_median(&of(Run::ratio)),
                added_ns: bootstrap_median(&of(Run::added_ns_per_switch)),
                prog_ns: median(&of(|r| r.prog_ns_per_switch)),
                others_busy: median(&of(|r| r.others_busy)),
            }
        })
        .collect()
}

fn outcomes(rows: &[Row]) -> Vec<Outcome> {
    verdict::outcomes(|key| rows.iter().find(|r| r.key == key).map(|r| r.runs))
}

fn interval(e: &Estimate, digits: usize) -> String {
    format!("{:.digits$} [{:.digits$}, {:.digits$}]", e.median, e.low, e.high)
}

fn markdown_table(md: &mut String, label: &str, rows: &[Row], outcomes: &[Outcome], switches: f64) {
    let _ = write!(
        md,
        "\n## {label} ping-pong (~{switches:.0} switches per run)\n\n\
         | variant | median elapsed | ratio to untraced [95 % CI] | ns added per switch [95 % CI] | BPF program ns per switch | other CPUs busy |\n\
         |---|---|---|---|---|---|\n"
    );
    for r in rows {
        let prog = if r.prog_ns.is_nan() {
            "-".into()
        } else {
            format!("{:.0}", r.prog_ns)
        };
        let _ = writeln!(
            md,
            "| {} | {:.1} ms | {}x | {} | {prog} | {:.0} % |",
            r.name,
            r.elapsed_ns / 1e6,
            interval(&r.ratio, 3),
            interval(&r.added_ns, 0),
            r.others_busy * 100.0
        );
    }
    md.push('\n');
    for o in outcomes {
        let _ = writeln!(
            md,
            "- {}: {:.0} ns vs {:.0} ns per switch; difference {} ns: **{}**",
            o.what,
            o.value_ns,
            o.limit_ns,
            interval(&o.difference, 0),
            o.verdict
        );
    }
}

fn estimate_json(e: &Estimate) -> Value {
    json!({"median": e.median, "low": e.low, "high": e.high})
}

/// The variant's programs over all its program-time runs, by name.
fn programs_json(runs: &[Run]) -> Value {
    let mut by_name: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for p in runs.iter().flat_map(|r| &r.progs) {
        let e = by_name.entry(&p.name).or_default();
        e.0 += p.runs;
        e.1 += p.run_ns;
    }
    by_name
        .into_iter()
        .map(|(name, (runs, ns))| json!({"name": name, "runs": runs, "run_ns": ns}))
        .collect()
}

fn workload_json(label: &str, rows: &[Row], outcomes: &[Outcome], switches: f64) -> Value {
    let variants: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "name": r.name,
                "median_elapsed_ns": r.elapsed_ns,
                "ratio": estimate_json(&r.ratio),
                "ns_added_per_switch": estimate_json(&r.added_ns),
                "program_ns_per_switch": (!r.prog_ns.is_nan()).then_some(r.prog_ns),
                "programs": programs_json(r.runs),
                "others_busy": r.others_busy,
            })
        })
        .collect();
    let targets: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            json!({"target": o.what, "value_ns": o.value_ns, "limit_ns": o.limit_ns,
                   "difference_ns": estimate_json(&o.difference), "verdict": o.verdict})
        })
        .collect();
    json!({"workload": label, "switches": switches, "variants": variants, "targets": targets})
}

/// The report: (Markdown, JSON).
pub fn render(samples: &Samples, plan: &Plan) -> (String, String) {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let kernel = kernel.trim();
    let mut md = format!(
        "# tracer overhead\n\nPinned ping-pongs of {} round trips on CPU {}, {} rounds; in each round every variant runs \
         right after an untraced run that its ratio and ns are paired with; medians of the per-round figures with \
         bootstrap 95 % intervals; BPF program time from the kernel's run-time statistics in separate shorter runs \
         (statistics off during the timed ones); kernel {kernel}.\n",
        plan.round_trips, plan.cpu, plan.rounds
    );
    let mut workloads = Vec::new();
    for (w, (label, _)) in WORKLOADS.iter().enumerate() {
        let rows = rows(samples, w);
        let switches = median(&rows[0].runs.iter().map(|r| r.switches).collect::<Vec<_>>());
        // The targets' bootstrap once, for both renderings.
        let outcomes = outcomes(&rows);
        markdown_table(&mut md, label, &rows, &outcomes, switches);
        workloads.push(workload_json(label, &rows, &outcomes, switches));
    }
    let json = json!({
        "rounds": plan.rounds,
        "round_trips": plan.round_trips,
        "cpu": plan.cpu,
        "kernel": kernel,
        "workloads": workloads,
    });
    (md, format!("{json}\n"))
}
