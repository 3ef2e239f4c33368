//! The matrix's report: the Markdown table and the `--cgroup` and
//! `--per-process` lines under it, kernel-matrix.json, and the failures
//! explained on stderr.

use std::fmt::Write as _;

use serde_json::Value;

use super::verdict::{Outcome, per_process_result};

/// kernel-matrix.json: one object per kernel.
pub(super) fn matrix_json(outcomes: &[Outcome]) -> Vec<Value> {
    outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "kernel": o.label,
                "release": o.release,
                "pass": o.pass(),
                "error": o.error,
                "with_btf": o.with_btf,
                "without_btf": o.without_btf,
                "no_btf_message": o.no_btf_message,
                "cgroup": {
                    "process_switches": o.cgroup.0,
                    "inside": o.cgroup.1,
                    "outside": o.cgroup.2,
                    "problem": o.cgroup_problem(),
                },
                "per_process": per_process_json(o),
            })
        })
        .collect()
}

/// `per_process_result` of each probe, for kernel-matrix.json.
fn per_process_json(o: &Outcome) -> Vec<Value> {
    ["tp_btf", "tracepoint"]
        .iter()
        .zip(&o.per_process)
        .map(|(probe, lines)| {
            let result = per_process_result(lines);
            serde_json::json!({
                "probe": probe,
                "exited": result.as_ref().ok().map(|r| r.0),
                "switches_out": result.as_ref().ok().map(|r| r.1),
                "kernel": result.as_ref().ok().map(|r| r.2),
                "problem": result.err(),
            })
        })
        .collect()
}

/// The result table, in Markdown: per kernel, each probe with BTF, then the
/// run with BTF hidden (where tp_btf must say why it cannot load and the
/// tracepoint probe must take over).
pub(super) fn table(outcomes: &[Outcome]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| kernel | release | BTF (task_struct.tgid at byte) | probe | measures | cannot measure | result |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let short = |m: &str| m.trim_end_matches("_ns").trim_end_matches("_latency").to_owned();
    for o in outcomes {
        if let Some(e) = &o.error {
            let _ = writeln!(md, "| {} | {} | | | | | FAIL: {e} |", o.label, o.release);
            continue;
        }
        for (btf, check) in [("yes", &o.with_btf), ("hidden", &o.without_btf)] {
            let Some(check) = check else { continue };
            let btf = match check["task_offsets"]["tgid"].as_u64() {
                Some(tgid) => format!("{btf} ({tgid})"),
                None => btf.to_owned(),
            };
            for p in check["probes"].as_array().into_iter().flatten() {
                let probe = p["probe"].as_str().unwrap_or("?");
                if p["unavailable"].is_string() {
                    // Said in the tracepoint row below.
                    continue;
                }
                let (measures, missing, result) = if let Some(e) = p["error"].as_str() {
                    (String::new(), String::new(), format!("FAIL: {e}"))
                } else {
                    let mut metrics: Vec<String> = p["metrics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(short)
                        .collect();
                    metrics.insert(0, "counts".into());
                    if let Some(t) = p["task_times"].as_str().filter(|t| *t != "task_storage") {
                        metrics.push(format!("(per-task times in {})", t.replace('_', " ")));
                    }
                    let missing: Vec<String> = p["missing"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(|m| short(m))
                        .collect();
                    let mut result = if p["pass"] == Value::Bool(true) {
                        "pass".to_owned()
                    } else {
                        format!("FAIL: {}", failures(p).join("; "))
                    };
                    if btf.starts_with("hidden") {
                        result += if o.told_no_btf() {
                            "; without BTF tracer says so and falls back to it"
                        } else {
                            "; FAIL: tracing without BTF did not say why it fell back"
                        };
                    }
                    (metrics.join(", "), missing.join(", "), result)
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {btf} | {probe} | {measures} | {missing} | {result} |",
                    o.label, o.release,
                );
            }
        }
    }
    md
}

/// The `--cgroup` line under the table.
pub(super) fn cgroup_lines(outcomes: &[Outcome]) -> String {
    let mut md = String::new();
    for o in outcomes.iter().filter(|o| o.error.is_none()) {
        let (seen, inside, outside) = o.cgroup_counts().unwrap_or_default();
        let _ = writeln!(
            md,
            "- {}: `--cgroup` counted {seen} process switches for a ping-pong of {inside} inside (one outside made {outside}): {}",
            o.label,
            o.cgroup_problem()
                .map_or_else(|| "pass".to_owned(), |p| format!("FAIL: {p}"))
        );
        for (probe, lines) in ["tp_btf", "tracepoint"].iter().zip(&o.per_process) {
            let line = match per_process_result(lines) {
                Ok((n, out, kernel)) => {
                    format!("reported all {n} exited processes, {out} switches out for the kernel's {kernel}: pass")
                }
                Err(p) => format!("FAIL: {p}"),
            };
            let _ = writeln!(md, "- {}: `--per-process` ({probe}) {line}", o.label);
        }
    }
    md
}

/// The failed comparisons of one probe's check, one line each.
fn failures(probe: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for w in probe["workloads"].as_array().into_iter().flatten() {
        for i in w["items"].as_array().into_iter().flatten() {
            if i["pass"] != Value::Bool(true) {
                out.push(format!(
                    "{} {}: tracer {} kernel {} (allowed {})",
                    w["workload"].as_str().unwrap_or("?"),
                    i["name"].as_str().unwrap_or("?"),
                    i["tracer"],
                    i["kernel"],
                    i["allowed"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    out
}

pub(super) fn explain_failure(o: &Outcome) {
    eprintln!("xtask: kernel {} ({}) failed:", o.label, o.release);
    if let Some(e) = &o.error {
        eprintln!("  {e}");
    }
    if let Some(p) = o.cgroup_problem() {
        eprintln!("  --cgroup: {p}");
    }
    for check in [&o.with_btf, &o.without_btf].into_iter().flatten() {
        for p in check["probes"].as_array().into_iter().flatten() {
            if let Some(e) = p["error"].as_str() {
                eprintln!("  {}: {e}", p["probe"]);
            }
            for f in failures(p) {
                eprintln!("  {}: {f}", p["probe"]);
            }
        }
    }
}
