//! `cargo xtask bench-overhead`: what tracing costs a pinned process
//! ping-pong, variant by variant, in one run. Variants alternate round-robin
//! so that drift on a shared host hits them all alike; slowdowns are medians
//! of per-round ratios to the untraced run of the same round, never absolute
//! times compared across runs.

use std::{
    fmt::Write as _,
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

use crate::soak::json_u64;

/// One way of running the workload.
struct Variant {
    name: &'static str,
    /// What runs beside the workload: `None` for untraced; `Some((program,
    /// args))` where program `"tracer"` means the tracer being benchmarked.
    beside: Option<(&'static str, &'static [&'static str])>,
    /// How long it needs to be ready.
    warmup_ms: u64,
}

/// The bpftrace peer: classifies switches as same / different process from
/// the classic tracepoint, with a tid -> tgid map filled at switch-out.
const BPFTRACE_CLASSIFIER: &str = "tracepoint:sched:sched_switch { @tgid[tid] = pid; \
if (@tgid[args->next_pid] == pid) { @same = count(); } else { @cross = count(); } }";

const VARIANTS: &[Variant] = &[
    Variant {
        name: "untraced",
        beside: None,
        warmup_ms: 0,
    },
    Variant {
        name: "floor: empty tp_btf program on sched_switch",
        beside: Some(("tracer", &["floor"])),
        warmup_ms: 1500,
    },
    Variant {
        name: "tracer -m none (classify + count)",
        beside: Some(("tracer", &["--json", "-m", "none"])),
        warmup_ms: 1500,
    },
    Variant {
        name: "tracer -m switch (+ switch cost)",
        beside: Some(("tracer", &["--json", "-m", "switch"])),
        warmup_ms: 1500,
    },
    Variant {
        name: "tracer (default: all metrics)",
        beside: Some(("tracer", &["--json"])),
        warmup_ms: 1500,
    },
    Variant {
        name: "peer: libbpf-tools runqlat",
        beside: Some(("runqlat", &[])),
        warmup_ms: 1500,
    },
    Variant {
        name: "peer: libbpf-tools cpudist",
        beside: Some(("cpudist", &[])),
        warmup_ms: 1500,
    },
    Variant {
        name: "peer: bpftrace same/cross-process classifier",
        beside: Some(("bpftrace", &["-e", BPFTRACE_CLASSIFIER])),
        warmup_ms: 4000,
    },
    Variant {
        name: "peer: perf sched record",
        beside: Some(("perf", &["sched", "record", "-o", "/tmp/tracer-bench-perf.data"])),
        warmup_ms: 2000,
    },
];

/// Whether a program is on PATH (or is the tracer).
fn available(program: &str) -> bool {
    program == "tracer"
        || std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// Stops a background tracer when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        let _ = self.0.wait();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// One run of the workload: (elapsed ns, switches).
fn workload(tracer: &Path, cpu: usize, round_trips: u64) -> anyhow::Result<(u64, u64)> {
    let out = Command::new(tracer)
        .args(["ping-pong", "--kind", "processes", "--cpu", &cpu.to_string()])
        .args(["--round-trips", &round_trips.to_string()])
        .output()?;
    if !out.status.success() {
        bail!("workload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    Ok((
        json_u64(&line, "\"elapsed_ns\":").context("elapsed_ns")?,
        json_u64(&line, "\"switches\":").context("switches")?,
    ))
}

/// Installs the peers from Debian's packages.
pub fn install_peers() -> anyhow::Result<()> {
    eprintln!("xtask: installing libbpf-tools, bpftrace and linux-perf with apt-get");
    let status = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "libbpf-tools",
            "bpftrace",
            "linux-perf",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("apt-get failed ({status})");
    }
    Ok(())
}

pub fn bench(tracer: &Path, rounds: usize, round_trips: u64, out_dir: &Path) -> anyhow::Result<()> {
    // PATH for root-installed tools (sbin).
    let path = std::env::var("PATH").unwrap_or_default();
    // SAFETY: single-threaded at this point.
    unsafe { std::env::set_var("PATH", format!("{path}:/usr/sbin:/sbin")) };
    let variants: Vec<&Variant> = VARIANTS
        .iter()
        .filter(|v| {
            let ok = v.beside.is_none_or(|(program, _)| available(program));
            if !ok {
                eprintln!(
                    "xtask: skipping `{}`: not installed (--install-peers installs the peers)",
                    v.name
                );
            }
            ok
        })
        .collect();
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    eprintln!(
        "xtask: {rounds} rounds of {} variants, pinned process ping-pong of {round_trips} round trips on CPU {cpu}",
        variants.len()
    );
    // elapsed[variant][round], switches[variant][round]
    let mut elapsed = vec![Vec::new(); variants.len()];
    let mut switches = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, v) in variants.iter().enumerate() {
            let _beside = match v.beside {
                None => None,
                Some((program, args)) => {
                    let program = if program == "tracer" {
                        tracer.as_os_str()
                    } else {
                        std::ffi::OsStr::new(program)
                    };
                    let child = Command::new(program)
                        .args(args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .with_context(|| format!("starting {}", v.name))?;
                    std::thread::sleep(Duration::from_millis(v.warmup_ms));
                    Some(Background(child))
                }
            };
            let (ns, n) = workload(tracer, cpu, round_trips)?;
            elapsed[i].push(ns as f64);
            switches[i].push(n as f64);
        }
        eprintln!("xtask: round {}/{rounds} done", round + 1);
    }

    let base_switches = median(&mut switches[0].clone());
    let mut rows = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let med = median(&mut elapsed[i].clone());
        let mut ratios: Vec<f64> = elapsed[i].iter().zip(&elapsed[0]).map(|(x, u)| x / u).collect();
        let slowdown = median(&mut ratios);
        // Paired like the ratios: per round, this variant minus untraced.
        let mut diffs: Vec<f64> = elapsed[i]
            .iter()
            .zip(&elapsed[0])
            .map(|(x, u)| (x - u) / base_switches)
            .collect();
        let added = median(&mut diffs);
        rows.push((v.name, med, slowdown, added));
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| variant | median elapsed | slowdown (median of per-round ratios) | ns added per switch (median of per-round differences) |"
    );
    let _ = writeln!(table, "|---|---|---|---|");
    for (name, med, slowdown, added) in &rows {
        let _ = writeln!(table, "| {name} | {:.1} ms | {slowdown:.3}x | {added:.0} |", med / 1e6);
    }
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let md = format!(
        "# tracer overhead\n\nPinned process ping-pong, {round_trips} round trips (~{:.0} switches) on CPU {cpu}, {rounds} rounds, variants round-robin; kernel {}.\n\n{table}",
        base_switches,
        kernel.trim()
    );
    let json_rows: Vec<String> = rows
        .iter()
        .map(|(name, med, slowdown, added)| {
            format!(
                "{{\"variant\":\"{name}\",\"median_elapsed_ns\":{med:.0},\"slowdown\":{slowdown:.4},\"ns_added_per_switch\":{added:.1}}}"
            )
        })
        .collect();
    let json = format!(
        "{{\"rounds\":{rounds},\"round_trips\":{round_trips},\"switches\":{base_switches:.0},\"kernel\":\"{}\",\"variants\":[{}]}}\n",
        kernel.trim(),
        json_rows.join(",")
    );
    fs::create_dir_all(out_dir)?;
    fs::write(out_dir.join("bench-overhead.md"), &md)?;
    fs::write(out_dir.join("bench-overhead.json"), &json)?;
    println!("{md}");
    eprintln!("xtask: wrote {}/bench-overhead.{{md,json}}", out_dir.display());
    Ok(())
}
