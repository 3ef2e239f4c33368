//! `cargo xtask bench-cpus`: how tracer's costs grow with the CPU count.
//! Boots the matrix's newest kernel in QEMU with 2, 16 and 64 vCPUs (TCG:
//! good for ratios, not absolute times), runs tracer there with a 1 s
//! refresh and `--self-stats` beside a pinned ping-pong, with all metrics
//! and with `--per-process`, and reads each map's kernel memory and
//! tracer's CPU time per refresh; runs the same natively; projects both to
//! 256 CPUs.

mod render;

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::kernels::{self, initramfs, qemu};

/// The guest's /init; REFRESHES is replaced by the refreshes per mode.
const GUEST: &str = include_str!("guest.sh");

/// The kernel booted: the matrix's newest.
const KERNEL: &str = "7.x";

/// The two modes measured, as the guest names them.
pub const MODES: [&str; 2] = ["default", "per-process"];

/// What one run of tracer in one mode showed.
#[derive(Debug, Default)]
pub struct Mode {
    /// (map, memlock bytes), from the last report.
    pub maps: Vec<(String, u64)>,
    /// Tracer's CPU time of each 1 s report but the first (which includes
    /// attaching), in ns.
    pub cpu_ns: Vec<f64>,
}

/// One machine measured: natively or in a guest.
#[derive(Debug)]
pub struct Point {
    pub native: bool,
    pub cpus: usize,
    /// By `MODES`.
    pub modes: Vec<Mode>,
}

pub struct Options<'a> {
    pub tracer: &'a Path,
    pub target: &'a Path,
    pub cpus: Vec<usize>,
    pub refreshes: u64,
}

pub fn bench_cpus(opts: &Options) -> anyhow::Result<()> {
    if opts.refreshes < 3 {
        bail!("--refreshes must be at least 3");
    }
    let (vmlinuz, busybox) = kernels::kernel_and_busybox(opts.target, KERNEL)?;
    let initrd = opts.target.join("kernels/initrd-cpus.cpio");
    let init = GUEST.replace("REFRESHES", &opts.refreshes.to_string());
    initramfs::write_initramfs(opts.tracer, &busybox, &init, &initrd)?;
    eprintln!("xtask: natively, {} refreshes per mode", opts.refreshes);
    let mut points = vec![native(opts)?];
    for &cpus in &opts.cpus {
        eprintln!("xtask: booting {KERNEL} with {cpus} vCPUs");
        let machine = qemu::Machine {
            arch: &kernels::AMD64,
            cpus,
            memory_mib: 1024 + 16 * cpus,
        };
        let console = qemu::run_qemu(&vmlinuz, &initrd, &machine)?;
        let log = opts.target.join(format!("kernels/console-cpus-{cpus}.log"));
        fs::write(&log, &console)?;
        points.push(
            guest(&console, cpus).with_context(|| format!("the {cpus}-vCPU guest (console in {})", log.display()))?,
        );
    }
    let (md, json) = render::render(&points);
    print!("{md}");
    fs::write(opts.target.join("bench-cpus.md"), &md)?;
    fs::write(
        opts.target.join("bench-cpus.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    eprintln!("xtask: wrote {}/bench-cpus.{{md,json}}", opts.target.display());
    Ok(())
}

/// What a report line says of tracer's own cost: (CPU ns, maps).
fn own(line: &str) -> anyhow::Result<(f64, Vec<(String, u64)>)> {
    let v: Value = serde_json::from_str(line).context("a report that is not JSON")?;
    let own = &v["self"];
    let cpu = own["user_cpu_ns"]
        .as_f64()
        .context("a report without self.user_cpu_ns")?;
    let maps = own["maps"]
        .as_array()
        .context("a report without self.maps")?
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("?").to_owned(),
                m["memlock_bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    Ok((cpu, maps))
}

/// One mode's reports, in order.
fn mode(lines: &[&str]) -> anyhow::Result<Mode> {
    if lines.len() < 3 {
        bail!("{} reports, expected one per refresh", lines.len());
    }
    let mut out = Mode::default();
    for (i, line) in lines.iter().enumerate() {
        let (cpu, maps) = own(line)?;
        if i > 0 {
            out.cpu_ns.push(cpu);
        }
        out.maps = maps;
    }
    Ok(out)
}

/// The guest's console: a point.
fn guest(console: &str, cpus: usize) -> anyhow::Result<Point> {
    if !console.contains("@@done") {
        bail!("the guest did not finish");
    }
    let modes = MODES
        .iter()
        .map(|m| {
            let marker = format!("@@report-{m} ");
            let lines: Vec<&str> = console
                .lines()
                .filter_map(|l| l.trim_end_matches('\r').strip_prefix(marker.as_str()))
                .collect();
            mode(&lines).with_context(|| format!("mode {m}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Point {
        native: false,
        cpus,
        modes,
    })
}

/// The same on this machine, natively.
fn native(opts: &Options) -> anyhow::Result<Point> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut load = Command::new(opts.tracer)
        .args(["ping-pong", "--kind", "processes", "--round-trips", "1000000000"])
        .args(["--cpu", &(cpus - 1).to_string()])
        .stdout(Stdio::null())
        // Its own process group: both processes of the ping-pong are stopped.
        .process_group(0)
        .spawn()
        .context("starting the load")?;
    let result = MODES
        .iter()
        .map(|m| {
            let mut cmd = Command::new(opts.tracer);
            cmd.args([
                "--self-stats",
                "--json",
                "-i",
                "1s",
                "-d",
                &format!("{}s", opts.refreshes),
            ]);
            if *m == "per-process" {
                cmd.arg("--per-process");
            }
            let out = cmd.output().context("running tracer")?;
            if !out.status.success() {
                bail!("tracer failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            mode(&String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>())
        })
        .collect::<anyhow::Result<Vec<Mode>>>();
    // SAFETY: signals the load's own process group (its pid, as set above).
    unsafe { libc::killpg(load.id() as i32, libc::SIGKILL) };
    let _ = load.wait();
    Ok(Point {
        native: true,
        cpus,
        modes: result?,
    })
}
