//! `--self-stats` in the human report: what tracer cost during the report,
//! program by program, its userspace, and its maps' kernel memory.

use std::fmt::Write as _;

use super::fmt_ns;
use crate::snapshot::{MapMemory, OwnCost};

/// `--self-stats`: what tracer cost during the report.
pub(super) fn render(out: &mut String, own: &OwnCost, duration_ns: u64) {
    let share = |ns: u64| {
        if duration_ns == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", ns as f64 * 100.0 / duration_ns as f64)
        }
    };
    let _ = writeln!(
        out,
        "\ntracer's own cost (kernel programs: BPF run-time statistics, on for this run):"
    );
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>10} {:>12} {:>10}",
        "program", "runs", "ns/run", "total", "% of a CPU"
    );
    let mut total = 0;
    for p in &own.programs {
        let mean = p
            .run_ns
            .checked_div(p.runs)
            .map_or_else(|| "-".to_owned(), |m| m.to_string());
        let _ = writeln!(
            out,
            "{:<20} {:>12} {:>10} {:>12} {:>10}",
            p.name,
            p.runs,
            mean,
            fmt_ns(p.run_ns),
            share(p.run_ns)
        );
        total += p.run_ns;
    }
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>10} {:>12} {:>10}",
        "all programs",
        "",
        "",
        fmt_ns(total),
        share(total)
    );
    let _ = writeln!(
        out,
        "{:<20} {:>12} {:>10} {:>12} {:>10}   RSS {} KiB",
        "tracer (userspace)",
        "",
        "",
        fmt_ns(own.cpu_ns),
        share(own.cpu_ns),
        own.rss_bytes / 1024
    );
    maps(out, &own.maps);
}

/// The kernel memory of tracer's maps: the total, then each map over 1 KiB.
fn maps(out: &mut String, maps: &[MapMemory]) {
    if maps.is_empty() {
        return;
    }
    let total: u64 = maps.iter().map(|m| m.bytes).sum();
    let each: Vec<String> = maps
        .iter()
        .filter(|m| m.bytes >= 1024)
        .map(|m| format!("{} {}", m.name, fmt_size(m.bytes)))
        .collect();
    let _ = writeln!(
        out,
        "kernel maps: {} in all (memlock, per-CPU copies included): {}",
        fmt_size(total),
        each.join(", ")
    );
}

/// Bytes in KiB, or MiB from 10 MiB up.
fn fmt_size(bytes: u64) -> String {
    if bytes >= 10 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ProgramStats;

    #[test]
    fn programs_userspace_and_maps() {
        let own = OwnCost {
            programs: vec![ProgramStats {
                name: "sched_switch".into(),
                runs: 1000,
                run_ns: 97_000,
            }],
            maps: vec![
                MapMemory {
                    name: "HISTS".into(),
                    bytes: 262_144,
                },
                MapMemory {
                    name: "CPU".into(),
                    bytes: 544,
                },
            ],
            cpu_ns: 1_810_000,
            rss_bytes: 20 << 20,
        };
        let mut out = String::new();
        render(&mut out, &own, 1_000_000_000);
        assert!(out.contains("sched_switch                 1000         97"), "{out}");
        assert!(out.contains("tracer (userspace)"), "{out}");
        assert!(
            out.ends_with("kernel maps: 257 KiB in all (memlock, per-CPU copies included): HISTS 256 KiB\n"),
            "{out}"
        );
    }
}
