//! Where perf's view of the scheduler is complete, for the cross-check
//! against `perf sched timehist` (`perf_cross`): on this VM (kernel 6.18
//! under firecracker) perf and ftrace never see `sched_switch` out of idle
//! on CPU 1, while BPF programs do. A short recording of a shell sleeping
//! on each CPU finds the CPUs where they do; the measured tasks are pinned
//! there.

use std::sync::OnceLock;

use super::*;

/// Installs perf (Debian's linux-perf) when it is missing.
fn ensure_perf() {
    let found = || {
        Command::new("perf")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if found() {
        return;
    }
    eprintln!("perf is missing: installing linux-perf");
    let _ = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "linux-perf"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    assert!(
        found(),
        "perf is missing and apt-get install linux-perf did not install it"
    );
}

/// Whether perf sees `sched_switch` out of idle on `cpu`: a complete
/// trace has, after every switch into idle there, a switch out of idle
/// next. Needs at least 3 switches into idle (up to five tries, as other
/// load may keep the CPU from going idle).
fn perf_sees_idle_exits(cpu: usize) -> bool {
    for _ in 0..5 {
        let (entries, exits_seen) = idle_switches(cpu);
        if entries >= 3 {
            return exits_seen == entries;
        }
    }
    false
}

/// Switches into idle that perf saw on `cpu`, and how many of them the next
/// switch seen there took out of idle again, while a shell pinned there
/// slept 50 times for 3 ms under `perf record -e sched:sched_switch`.
fn idle_switches(cpu: usize) -> (usize, usize) {
    let path = std::env::temp_dir().join(format!("tracer-calibrate-{}-{cpu}.data", std::process::id()));
    let recorded = Command::new("perf")
        .args(["record", "-q", "-e", "sched:sched_switch", "-a", "-o"])
        .arg(&path)
        .args(["--", "taskset", "-c", &cpu.to_string(), "sh", "-c"])
        .arg("for i in $(seq 50); do sleep 0.003; done")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(recorded, "perf record -e sched:sched_switch failed");
    let script = Command::new("perf")
        .args(["script", "-F", "cpu,trace", "-i"])
        .arg(&path)
        .stderr(Stdio::null())
        .output();
    let _ = std::fs::remove_file(&path);
    let Ok(script) = script else { return (0, 0) };
    let text = String::from_utf8_lossy(&script.stdout);
    let on_cpu = format!("[{cpu:03}]");
    let (mut entries, mut exits_seen, mut in_idle) = (0, 0, false);
    for line in text.lines().filter(|l| l.trim_start().starts_with(&on_cpu)) {
        if in_idle && line.contains("prev_pid=0 ") {
            exits_seen += 1;
        }
        in_idle = line.contains("next_pid=0 ");
        entries += usize::from(in_idle);
    }
    // The last entry may have no switch after it yet.
    if in_idle {
        entries -= 1;
    }
    eprintln!(
        "calibration: CPU {cpu}: perf saw {entries} switches into idle, {exits_seen} of them followed by one out of it"
    );
    (entries, exits_seen)
}

/// The CPUs where perf sees idle exits (measured once per test process).
fn good_cpus() -> &'static [usize] {
    static GOOD: OnceLock<Vec<usize>> = OnceLock::new();
    GOOD.get_or_init(|| {
        ensure_perf();
        let online = std::thread::available_parallelism().map_or(1, |n| n.get());
        (0..online).rev().filter(|&c| perf_sees_idle_exits(c)).collect()
    })
}

/// (measured CPU, helper CPU). `None` when perf sees idle exits nowhere.
pub(super) fn cpus() -> Option<(usize, usize)> {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = *good_cpus().first()?;
    Some((
        cpu,
        if cpu + 1 < online {
            cpu + 1
        } else {
            cpu.saturating_sub(1)
        },
    ))
}
