//! The report of `cargo xtask bench-cpus`: per machine and mode, the maps'
//! kernel memory and tracer's CPU per refresh, then a projection to 256
//! CPUs: memory from the line through the guests' points (it is linear in
//! the CPU count), CPU from that line in guest time scaled by how much
//! faster this machine runs the 2-CPU case natively than the 2-vCPU guest.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{MODES, Mode, Point};
use crate::overhead::stats::median;

/// The CPU count projected to.
const PROJECT_TO: f64 = 256.0;

fn total(m: &Mode) -> f64 {
    m.maps.iter().map(|(_, b)| *b as f64).sum()
}

fn hists(m: &Mode) -> f64 {
    m.maps
        .iter()
        .find(|(n, _)| n == "HISTS")
        .map_or(f64::NAN, |(_, b)| *b as f64)
}

/// Least-squares line through `(x, y)`: (intercept, slope).
fn line(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - slope * mx, slope)
}

fn kib(b: f64) -> String {
    format!("{:.0} KiB", b / 1024.0)
}

/// The projection of one mode to `PROJECT_TO` CPUs: (memory bytes, memory
/// per CPU, CPU ns per refresh natively), when there are two guest points.
fn project(points: &[Point], i: usize) -> Option<(f64, f64, f64)> {
    let guests: Vec<&Point> = points.iter().filter(|p| !p.native).collect();
    if guests.len() < 2 {
        return None;
    }
    let mem = line(
        &guests
            .iter()
            .map(|p| (p.cpus as f64, total(&p.modes[i])))
            .collect::<Vec<_>>(),
    );
    let cpu = line(
        &guests
            .iter()
            .map(|p| (p.cpus as f64, median(&p.modes[i].cpu_ns)))
            .collect::<Vec<_>>(),
    );
    // Guest time to this machine's: the native point against the line at
    // the same CPU count.
    let native = points.iter().find(|p| p.native)?;
    let scale = median(&native.modes[i].cpu_ns) / (cpu.0 + cpu.1 * native.cpus as f64);
    Some((mem.0 + mem.1 * PROJECT_TO, mem.1, scale * (cpu.0 + cpu.1 * PROJECT_TO)))
}

pub fn render(points: &[Point]) -> (String, Value) {
    let mut md = String::from(
        "# tracer's costs by CPU count\n\nKernel memory of tracer's maps (memlock) and tracer's CPU time per 1 s refresh \
         (median over the refreshes after the first), beside a pinned process ping-pong; guests are QEMU TCG (times \
         are emulated: compare within the guest rows).\n\n\
         | machine | CPUs | mode | HISTS | all maps | CPU per refresh | % of a core |\n|---|---|---|---|---|---|---|\n",
    );
    let mut rows = Vec::new();
    for p in points {
        for (mode, m) in MODES.iter().zip(&p.modes) {
            let cpu = median(&m.cpu_ns);
            let machine = if p.native { "this machine" } else { "QEMU TCG guest" };
            let _ = writeln!(
                md,
                "| {machine} | {} | {mode} | {} | {} | {:.2} ms | {:.3} |",
                p.cpus,
                kib(hists(m)),
                kib(total(m)),
                cpu / 1e6,
                cpu / 1e7
            );
            rows.push(
                json!({"native": p.native, "cpus": p.cpus, "mode": mode, "maps": m.maps.iter()
                .map(|(n, b)| json!({"name": n, "memlock_bytes": b})).collect::<Vec<_>>(),
                "cpu_ns_per_refresh": m.cpu_ns}),
            );
        }
    }
    let mut projections = Vec::new();
    let _ = write!(
        md,
        "\nProjected to {PROJECT_TO} CPUs (memory: the line through the guests' points; CPU: that line in guest time, \
         scaled by this machine's native 2-CPU figure over the line's at 2):\n\n\
         | mode | all maps | of which per CPU | CPU per refresh | % of a core at 1 s |\n|---|---|---|---|---|\n"
    );
    for (i, mode) in MODES.iter().enumerate() {
        if let Some((mem, per_cpu, cpu)) = project(points, i) {
            let _ = writeln!(
                md,
                "| {mode} | {:.1} MiB | {} | {:.2} ms | {:.2} |",
                mem / 1048576.0,
                kib(per_cpu),
                cpu / 1e6,
                cpu / 1e7
            );
            projections.push(json!({"mode": mode, "cpus": PROJECT_TO, "memlock_bytes": mem,
                "memlock_bytes_per_cpu": per_cpu, "cpu_ns_per_refresh": cpu}));
        }
    }
    (md, json!({"points": rows, "projections": projections}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(native: bool, cpus: usize, cpu_ms: f64) -> Point {
        let mode = || Mode {
            maps: vec![("HISTS".into(), cpus as u64 * 131_072), ("PROCS".into(), 2 << 20)],
            cpu_ns: vec![cpu_ms * 1e6; 3],
        };
        Point {
            native,
            cpus,
            modes: vec![mode(), mode()],
        }
    }

    #[test]
    fn projects_memory_exactly_and_cpu_by_the_native_scale() {
        // Guest: 10 ms + 1 ms per CPU; natively 10x faster.
        let points = [
            point(true, 2, 1.2),
            point(false, 2, 12.0),
            point(false, 16, 26.0),
            point(false, 64, 74.0),
        ];
        let (mem, per_cpu, cpu) = project(&points, 0).unwrap();
        assert!((per_cpu - 131_072.0).abs() < 1e-6);
        assert!((mem - (256.0 * 131_072.0 + 2097152.0)).abs() < 1.0);
        assert!((cpu - 26.6e6).abs() < 1e3, "{cpu}");
        let (md, json) = render(&points);
        assert!(
            md.contains("| per-process | 34.0 MiB | 128 KiB | 26.60 ms | 2.66 |"),
            "{md}"
        );
        assert_eq!(json["points"].as_array().unwrap().len(), 8);
    }
}
