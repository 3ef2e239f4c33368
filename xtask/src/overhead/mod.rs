//! `cargo xtask bench-overhead`: what tracing costs pinned process and
//! thread ping-pongs, variant by variant, in one run, with confidence
//! intervals and a verdict per target. Many short rounds; in each, every
//! variant runs right after an untraced run, so that drift on a shared host
//! hits both sides of each ratio alike; never absolute times compared across
//! runs.

mod beside;
mod measure;
mod procstat;
mod progs;
mod render;
pub mod stats;
mod variants;
mod verdict;

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, bail};

/// What `cargo xtask bench-overhead` was asked for.
pub struct Options<'a> {
    pub tracer: &'a Path,
    pub rounds: usize,
    pub round_trips: u64,
    /// Only these variants (by key), beside untraced; empty: all.
    pub only: Vec<String>,
    pub out_dir: &'a Path,
}

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

pub fn bench(opts: &Options) -> anyhow::Result<()> {
    if opts.rounds < 2 {
        bail!("--rounds must be at least 2 (confidence intervals need several rounds)");
    }
    // PATH for root-installed tools (sbin).
    let path = std::env::var("PATH").unwrap_or_default();
    // SAFETY: single-threaded at this point.
    unsafe { std::env::set_var("PATH", format!("{path}:/usr/sbin:/sbin")) };
    let variants = variants::runnable(&opts.only)?;
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    eprintln!(
        "xtask: {} rounds of {} variants, pinned process and thread ping-pongs of {} round trips on CPU {cpu}",
        opts.rounds,
        variants.len(),
        opts.round_trips
    );
    let plan = measure::Plan {
        tracer: opts.tracer,
        rounds: opts.rounds,
        round_trips: opts.round_trips,
        cpu,
    };
    let samples = measure::measure(&plan, variants)?;
    let (md, json) = render::render(&samples, &plan);
    fs::create_dir_all(opts.out_dir)?;
    fs::write(opts.out_dir.join("bench-overhead.md"), &md)?;
    fs::write(opts.out_dir.join("bench-overhead.json"), &json)?;
    println!("{md}");
    eprintln!("xtask: wrote {}/bench-overhead.{{md,json}}", opts.out_dir.display());
    Ok(())
}
