//! The human report of a check.

use super::Check;

/// A number, or `-` where there is none.
pub(super) fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// The human report.
pub fn table(check: &Check) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kernel {}; BTF {}{}",
        check.kernel_release,
        if check.btf { "yes" } else { "no" },
        check
            .task_offsets
            .as_ref()
            .map(|o| format!(
                " (task_struct.pid at byte {}, .tgid at {})",
                o.get("pid").unwrap_or(&0),
                o.get("tgid").unwrap_or(&0)
            ))
            .unwrap_or_default()
    );
    for p in &check.probes {
        let _ = writeln!(out);
        if let Some(why) = &p.unavailable {
            let _ = writeln!(out, "probe {}: unavailable: {why}", p.probe);
            continue;
        }
        if let Some(e) = &p.error {
            let _ = writeln!(out, "probe {}: FAILED to attach: {e}", p.probe);
            continue;
        }
        let _ = writeln!(
            out,
            "probe {}: measures {}{}",
            p.probe,
            if p.metrics.is_empty() {
                "counts only".to_owned()
            } else {
                p.metrics.join(", ")
            },
            match (p.task_times, p.offcpu_slots) {
                (Some(t), Some(n)) =>
                    format!(" (off-CPU and run-queue stamps in {n} slots by thread id, beyond in {t})"),
                _ => String::new(),
            }
        );
        for (metric, why) in &p.missing {
            let _ = writeln!(out, "  {metric} unavailable: {why}");
        }
        for w in &p.workloads {
            let _ = writeln!(out, "  {}:", w.title);
            for i in &w.items {
                let _ = writeln!(
                    out,
                    "    {:4}  {:<28} tracer {:>14}  kernel {:>14}  allowed {}",
                    if i.pass { "ok" } else { "FAIL" },
                    i.name,
                    show(i.tracer),
                    show(i.kernel),
                    i.allowed
                );
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", if check.pass { "PASS" } else { "FAIL" });
    out
}
