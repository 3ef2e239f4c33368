//! `cargo xtask`: the project's only entry points. Each command first makes
//! sure the pinned toolchain, rust-src and bpf-linker are installed.
mod dist;
mod kernels;
mod overhead;
mod scaling;
mod setup;
mod soak;
mod tasks;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test tracer")]
struct Xtask {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the build needs (toolchain, rust-src, bpf-linker).
    Setup,
    /// Build the self-contained release binary target/release/tracer.
    Build,
    /// Build, then run tracer (through sudo when not root): `cargo xtask run -- -d 5s`.
    Run {
        /// Arguments for tracer.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Every test: unit tests, CLI tests, live-kernel tests (as root, via sudo
    /// when needed), then the kernel matrix (test-kernels) with the static
    /// binary, and the packages in an old userland (test-dist).
    Test {
        /// Skip the kernel matrix and the packaging tests (for quick runs; CI
        /// runs them).
        #[arg(long)]
        no_kernels: bool,
        /// Extra arguments for the test binaries (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Boot each kernel of the matrix (Debian's 5.10, 6.1, 6.12 and newest
    /// 7.x) in QEMU and run `tracer check` in it, with and without its BTF;
    /// print the table and write target/kernel-matrix.{md,json}.
    TestKernels {
        /// Only these kernels (by label: 5.10, 6.1, 6.12, 7.x); repeatable.
        #[arg(long = "kernel", value_name = "LABEL")]
        kernels: Vec<String>,
    },
    /// Build the packages (dist), then check them in a Debian 11 root:
    /// checksums, `dpkg -i`, `man tracer`, and `tracer check` (as root).
    TestDist,
    /// rustfmt --check and clippy -D warnings, host crates and the eBPF crate.
    Lint,
    /// Measure what tracing costs pinned process and thread ping-pongs:
    /// untraced, empty programs (the floors), tracer's modes and the peers;
    /// many short interleaved rounds, 95 % intervals, a verdict per target
    /// (as root).
    BenchOverhead {
        /// Rounds (each runs every variant once, right after an untraced run).
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        /// Round trips of the ping-pong per timed run.
        #[arg(long, default_value_t = 50_000)]
        round_trips: u64,
        /// Only these variants (comma-separated keys: floor1, floor2, none,
        /// switch, oncpu, runq, default, cpudist, runqlat, runqlat+cpudist,
        /// bpftrace, perf); untraced always runs.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Install the peers (libbpf-tools, bpftrace, perf) from Debian's
        /// packages first; without it, peers that are not installed are skipped.
        #[arg(long)]
        install_peers: bool,
    },
    /// Measure how tracer's kernel memory and CPU per refresh grow with the
    /// CPU count: QEMU guests with 2, 16 and 64 vCPUs and this machine, with
    /// a projection to 256 CPUs (as root).
    BenchCpus {
        /// The guests' vCPU counts (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "2,16,64")]
        cpus: Vec<usize>,
        /// 1 s refreshes per mode and machine.
        #[arg(long, default_value_t = 10)]
        refreshes: u64,
    },
    /// Build the release artefacts into target/dist: static binaries (musl)
    /// for x86_64 and aarch64 as tarballs with sha256 files, and a .deb per
    /// architecture (man pages, completions, the example systemd unit).
    Dist,
    /// Run tracer for a long time under load and task churn; check that its
    /// memory stays flat and its counts stay right (as root).
    Soak {
        #[arg(long, default_value_t = 30, conflicts_with = "seconds")]
        minutes: u64,
        /// Length in seconds instead (for short CI runs).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

fn main() -> ExitCode {
    let xtask = Xtask::parse();
    let result = match xtask.command {
        Command::Setup => setup::ensure().map(drop),
        Command::Build => setup::ensure().and_then(|env| tasks::build(&env)),
        Command::Run { args } => setup::ensure().and_then(|env| tasks::run(&env, &args)),
        Command::Test { no_kernels, args } => setup::ensure().and_then(|env| {
            tasks::test(&env, &args)?;
            if no_kernels {
                eprintln!("xtask: kernel matrix and packaging tests skipped (--no-kernels)");
                return Ok(());
            }
            kernels::test_kernels(&|arch| dist::build_for(&env, arch), &env.workspace.join("target"), &[])?;
            dist::dist(&env)?;
            dist::userland::test(&env.workspace.join("target"))
        }),
        Command::TestKernels { kernels } => setup::ensure().and_then(|env| {
            kernels::test_kernels(
                &|arch| dist::build_for(&env, arch),
                &env.workspace.join("target"),
                &kernels,
            )
        }),
        Command::TestDist => setup::ensure().and_then(|env| {
            dist::dist(&env)?;
            dist::userland::test(&env.workspace.join("target"))
        }),
        Command::Lint => setup::ensure().and_then(|env| tasks::lint(&env)),
        Command::BenchOverhead {
            rounds,
            round_trips,
            only,
            install_peers,
        } => setup::ensure().and_then(|env| {
            if install_peers {
                overhead::install_peers()?;
            }
            tasks::build(&env)?;
            overhead::bench(&overhead::Options {
                tracer: &env.workspace.join("target/release/tracer"),
                rounds,
                round_trips,
                only,
                out_dir: &env.workspace.join("target"),
            })
        }),
        Command::BenchCpus { cpus, refreshes } => setup::ensure().and_then(|env| {
            scaling::bench_cpus(&scaling::Options {
                tracer: &dist::build_static(&env, dist::host_arch()?)?,
                target: &env.workspace.join("target"),
                cpus,
                refreshes,
            })
        }),
        Command::Dist => setup::ensure().and_then(|env| dist::dist(&env)),
        Command::Soak { minutes, seconds } => setup::ensure().and_then(|env| {
            tasks::build(&env)?;
            soak::soak(
                &env.workspace.join("target/release/tracer"),
                seconds.unwrap_or(minutes * 60),
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
