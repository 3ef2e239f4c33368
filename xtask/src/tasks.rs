//! Build, run, test, lint.

use std::process::Command;

use anyhow::Context as _;

use crate::setup::{Env, TOOLCHAIN, run as run_cmd};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

pub fn build(env: &Env) -> anyhow::Result<()> {
    run_cmd(env.cargo().args(["build", "--release", "--package", "tracer"]))?;
    eprintln!("xtask: built {}", env.workspace.join("target/release/tracer").display());
    Ok(())
}

pub fn run(env: &Env, args: &[String]) -> anyhow::Result<()> {
    build(env)?;
    let binary = env.workspace.join("target/release/tracer");
    let mut cmd = if is_root() {
        Command::new(&binary)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg(&binary);
        sudo
    };
    let status = cmd
        .args(args)
        .status()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    std::process::exit(status.code().unwrap_or(1));
}

pub fn test(env: &Env, args: &[String]) -> anyhow::Result<()> {
    // Unit and CLI tests of every host crate.
    run_cmd(env.cargo().args(["test", "--release", "--"]).args(args))?;
    // Live-kernel tests: root, one at a time (they measure the whole machine).
    let mut live = env.cargo();
    live.args([
        "test",
        "--release",
        "--package",
        "tracer",
        "--features",
        "live-tests",
        "--test",
        "live",
        "--",
        "--test-threads=1",
    ])
    .args(args);
    if is_root() {
        install_test_tools()?;
    } else {
        eprintln!("xtask: live-kernel tests need root; running them through sudo (they install what they miss)");
        live.env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER", "sudo -E");
    }
    run_cmd(&mut live)
}

/// What the export tests run against, from Debian's packages: a Prometheus
/// server and promtool, HdrHistogram's Java library and a Java runtime; and
/// perf, which the cross-check against `perf sched timehist` records with.
const TEST_TOOLS: [(&str, &str); 5] = [
    ("/usr/bin/perf", "linux-perf"),
    ("/usr/bin/prometheus", "prometheus"),
    ("/usr/bin/promtool", "prometheus"),
    ("/usr/share/java/hdrhistogram.jar", "libhdrhistogram-java"),
    ("/usr/bin/java", "default-jre-headless"),
];

/// Installs the missing test tools (as root). Prometheus is run by the tests
/// themselves, on loopback, and killed at their end: where systemd would
/// start the package's service, it is stopped and disabled again.
fn install_test_tools() -> anyhow::Result<()> {
    let mut missing: Vec<&str> = TEST_TOOLS
        .iter()
        .filter(|(path, _)| !std::path::Path::new(path).exists())
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} for the live tests", missing.join(", "));
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        run_cmd(Command::new("apt-get").args(["update", "-q"]))?;
        if !install() {
            anyhow::bail!("apt-get install {} failed", missing.join(" "));
        }
    }
    if missing.contains(&"prometheus") && std::path::Path::new("/run/systemd/system").exists() {
        let _ = Command::new("systemctl")
            .args(["disable", "--now", "prometheus.service"])
            .status();
    }
    Ok(())
}

pub fn lint(env: &Env) -> anyhow::Result<()> {
    run_cmd(env.cargo().args(["fmt", "--all", "--check"]))?;
    run_cmd(env.cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // The live-kernel tests, which only the `live-tests` feature builds.
    run_cmd(env.cargo().args([
        "clippy",
        "--package",
        "tracer",
        "--features",
        "live-tests",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The kernel programs, for the BPF target they are built for.
    run_cmd(
        env.cargo()
            .args([
                "clippy",
                "--package",
                "tracer-ebpf",
                "--release",
                "--target",
                "bpfel-unknown-none",
            ])
            .args(["-Z", "build-std=core", "--", "-D", "warnings"])
            .env("RUSTC_BOOTSTRAP", "1"),
    )?;
    eprintln!("xtask: fmt and clippy clean ({TOOLCHAIN})");
    Ok(())
}
