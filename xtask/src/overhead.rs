//! `cargo xtask bench-overhead`: what tracing costs pinned process and
//! thread ping-pongs, variant by variant, in one run. Variants alternate
//! round-robin, each right after an untraced run, so that drift on a shared
//! host hits both sides of each ratio alike; slowdowns are medians of
//! per-round ratios to that untraced run, never absolute times compared
//! across runs.

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

/// Where `perf sched record` writes (deleted after each of its runs).
const PERF_DATA: &str = "/tmp/tracer-bench-perf.data";

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
        name: "floor: empty tp_btf programs on sched_switch and sched_exit_tp",
        beside: Some(("tracer", &["floor", "--with-exit"])),
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
        beside: Some(("perf", &["sched", "record", "-o", PERF_DATA])),
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

/// The two workloads, both pinned to one CPU: (label, `--kind`).
const WORKLOADS: [(&str, &str); 2] = [("process", "processes"), ("thread", "threads")];

/// One run of the workload: (elapsed ns, switches).
fn workload(tracer: &Path, kind: &str, cpu: usize, round_trips: u64) -> anyhow::Result<(u64, u64)> {
    let out = Command::new(tracer)
        .args(["ping-pong", "--kind", kind, "--cpu", &cpu.to_string()])
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

/// One variant's result on one workload.
struct Row {
    name: &'static str,
    median_ns: f64,
    slowdown: f64,
    added_ns: f64,
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
        "xtask: {rounds} rounds of {} variants, pinned process and thread ping-pongs of {round_trips} round trips on CPU {cpu}",
        variants.len()
    );
    let samples = measure(tracer, variants, rounds, round_trips, cpu)?;
    let (md, json) = render(&samples, rounds, round_trips, cpu);
    fs::create_dir_all(out_dir)?;
    fs::write(out_dir.join("bench-overhead.md"), &md)?;
    fs::write(out_dir.join("bench-overhead.json"), &json)?;
    println!("{md}");
    eprintln!("xtask: wrote {}/bench-overhead.{{md,json}}", out_dir.display());
    Ok(())
}

/// What the rounds measured, by workload, variant and round.
struct Samples<'a> {
    /// The variants that ran (those that could not are left out).
    variants: Vec<&'a Variant>,
    /// elapsed[workload][variant][round] (variant 0: untraced).
    elapsed: Vec<Vec<Vec<f64>>>,
    /// base[workload][variant][round]: the untraced run just before that
    /// variant's (row 0 holds all of them).
    base: Vec<Vec<Vec<f64>>>,
    /// switches[workload][run]: of the untraced runs.
    switches: Vec<Vec<f64>>,
}

/// Runs the rounds: each variant beside both workloads, each right after an
/// untraced run of them.
fn measure<'a>(
    tracer: &Path,
    mut variants: Vec<&'a Variant>,
    rounds: usize,
    round_trips: u64,
    cpu: usize,
) -> anyhow::Result<Samples<'a>> {
    // elapsed[workload][variant][round]; base[workload][variant][round]: the
    // untraced run just before that variant's (row 0 holds all of them);
    // switches[workload][run]: of the untraced runs.
    let mut elapsed = vec![vec![Vec::new(); variants.len()]; WORKLOADS.len()];
    let mut base = vec![vec![Vec::new(); variants.len()]; WORKLOADS.len()];
    let mut switches = vec![Vec::new(); WORKLOADS.len()];
    for round in 0..rounds {
        // Each round starts one variant further on, so that none always runs
        // right after the same one (perf leaves ~100 MB to write back).
        let mut k = 0;
        while k + 1 < variants.len() {
            let i = 1 + (k + round) % (variants.len() - 1);
            let v = variants[i];
            let Some((program, args)) = v.beside else {
                bail!("variant `{}` runs nothing beside the workload", v.name);
            };
            // Untraced right before each variant, so that a slow drift of
            // the host's speed hits both sides of each ratio alike.
            for (w, (_, kind)) in WORKLOADS.iter().enumerate() {
                let (ns, n) = workload(tracer, kind, cpu, round_trips)?;
                base[w][i].push(ns as f64);
                base[w][0].push(ns as f64);
                elapsed[w][0].push(ns as f64);
                switches[w].push(n as f64);
            }
            let command = if program == "tracer" {
                tracer.as_os_str()
            } else {
                std::ffi::OsStr::new(program)
            };
            let child = Command::new(command)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", v.name))?;
            std::thread::sleep(Duration::from_millis(v.warmup_ms));
            let mut beside = Background(child);
            if let Some(status) = beside.0.try_wait()? {
                // A variant that cannot run here (e.g. no sched_exit_tp) is
                // left out of every round, not measured as untraced.
                eprintln!("xtask: skipping `{}`: it exited ({status}) before the workload", v.name);
                if round > 0 {
                    bail!("`{}` ran in an earlier round but exited in round {}", v.name, round + 1);
                }
                variants.remove(i);
                for w in elapsed.iter_mut().chain(base.iter_mut()) {
                    w.remove(i);
                }
                continue;
            }
            for (w, (_, kind)) in WORKLOADS.iter().enumerate() {
                let (ns, _) = workload(tracer, kind, cpu, round_trips)?;
                elapsed[w][i].push(ns as f64);
            }
            drop(beside);
            // What the variant wrote goes to disk now, not during the next one.
            let _ = fs::remove_file(PERF_DATA);
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
            k += 1;
        }
        eprintln!("xtask: round {}/{rounds} done", round + 1);
    }

    Ok(Samples {
        variants,
        elapsed,
        base,
        switches,
    })
}

/// The report of `samples`: Markdown and JSON.
fn render(samples: &Samples, rounds: usize, round_trips: u64, cpu: usize) -> (String, String) {
    let Samples {
        variants,
        elapsed,
        base,
        switches,
    } = samples;
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut md = format!(
        "# tracer overhead\n\nPinned ping-pongs of {round_trips} round trips on CPU {cpu}, {rounds} rounds, variants round-robin (each round starting one further on), each right after an untraced run that its ratio is to; kernel {}.\n",
        kernel.trim()
    );
    let mut json_workloads = Vec::new();
    for (w, (label, _)) in WORKLOADS.iter().enumerate() {
        let base_switches = median(&mut switches[w].clone());
        let rows: Vec<Row> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let ratios: Vec<f64> = elapsed[w][i].iter().zip(&base[w][i]).map(|(x, u)| x / u).collect();
                // Paired like the ratios: per round, this variant minus the
                // untraced run just before it.
                let diffs: Vec<f64> = elapsed[w][i]
                    .iter()
                    .zip(&base[w][i])
                    .map(|(x, u)| (x - u) / base_switches)
                    .collect();
                Row {
                    name: v.name,
                    median_ns: median(&mut elapsed[w][i].clone()),
                    slowdown: median(&mut ratios.clone()),
                    added_ns: median(&mut diffs.clone()),
                }
            })
            .collect();
        let _ = write!(
            md,
            "\n## {label} ping-pong (~{base_switches:.0} switches)\n\n| variant | median elapsed | slowdown (median of per-round ratios) | ns added per switch (median of per-round differences) |\n|---|---|---|---|\n"
        );
        for r in &rows {
            let _ = writeln!(
                md,
                "| {} | {:.1} ms | {:.3}x | {:.0} |",
                r.name,
                r.median_ns / 1e6,
                r.slowdown,
                r.added_ns
            );
        }
        let _ = write!(md, "\n{}", verdict(&rows));
        let json_rows: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"variant\":\"{}\",\"median_elapsed_ns\":{:.0},\"slowdown\":{:.4},\"ns_added_per_switch\":{:.1}}}",
                    r.name, r.median_ns, r.slowdown, r.added_ns
                )
            })
            .collect();
        json_workloads.push(format!(
            "{{\"workload\":\"{label}\",\"switches\":{base_switches:.0},\"variants\":[{}]}}",
            json_rows.join(",")
        ));
    }
    let json = format!(
        "{{\"rounds\":{rounds},\"round_trips\":{round_trips},\"kernel\":\"{}\",\"workloads\":[{}]}}\n",
        kernel.trim(),
        json_workloads.join(",")
    );
    (md, json)
}

/// The targets, each against floors and peers measured in the same run: met
/// or missed, and by how much.
fn verdict(rows: &[Row]) -> String {
    let find = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix));
    let mut out = String::new();
    let mut line = |what: String, value: f64, limit: f64, unit: &str| {
        let state = if value <= limit { "met" } else { "missed" };
        let digits = if unit == "x" { 3 } else { 0 };
        let _ = writeln!(
            out,
            "- {what}: {value:.digits$}{unit} vs {limit:.digits$}{unit}: {state}"
        );
    };
    if let (Some(floor), Some(none)) = (find("floor: empty tp_btf program on"), find("tracer -m none")) {
        line(
            "classify + count, ns added within 1.5x of the one-program floor's".into(),
            none.added_ns,
            1.5 * floor.added_ns,
            " ns",
        );
    }
    if let (Some(floor), Some(switch)) = (find("floor: empty tp_btf programs"), find("tracer -m switch")) {
        line(
            "+ switch cost, ns added within 1.5x of the two-program floor's".into(),
            switch.added_ns,
            1.5 * floor.added_ns,
            " ns",
        );
    }
    if let Some(default) = find("tracer (default") {
        line("default slowdown at most 1.10x".into(), default.slowdown, 1.10, "x");
        for peer in rows.iter().filter(|r| r.name.starts_with("peer:")) {
            line(
                format!("default slowdown below `{}`", peer.name.trim_start_matches("peer: ")),
                default.slowdown,
                peer.slowdown,
                "x",
            );
        }
    }
    out
}
