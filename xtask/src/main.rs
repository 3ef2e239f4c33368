//! `cargo xtask`: the project's only entry points. Each command first makes
//! sure the pinned toolchain, rust-src and bpf-linker are installed.
mod kernels;
mod overhead;
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
    /// when needed), then the kernel matrix (test-kernels).
    Test {
        /// Skip the kernel matrix (for quick runs; CI runs it).
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
    /// rustfmt --check and clippy -D warnings, host crates and the eBPF crate.
    Lint,
    /// Measure what tracing costs a pinned process ping-pong: untraced, an
    /// empty program (the floor), tracer's variants; round-robin (as root).
    BenchOverhead {
        /// Rounds (each runs every variant once).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Round trips of the ping-pong per run.
        #[arg(long, default_value_t = 200_000)]
        round_trips: u64,
        /// Install the peers (libbpf-tools, bpftrace, perf) from Debian's
        /// packages first; without it, peers that are not installed are skipped.
        #[arg(long)]
        install_peers: bool,
    },
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
                eprintln!("xtask: kernel matrix skipped (--no-kernels)");
                return Ok(());
            }
            tasks::build(&env)?;
            kernels::test_kernels(
                &env.workspace.join("target/release/tracer"),
                &env.workspace.join("target"),
                &[],
            )
        }),
        Command::TestKernels { kernels } => setup::ensure().and_then(|env| {
            tasks::build(&env)?;
            kernels::test_kernels(
                &env.workspace.join("target/release/tracer"),
                &env.workspace.join("target"),
                &kernels,
            )
        }),
        Command::Lint => setup::ensure().and_then(|env| tasks::lint(&env)),
        Command::BenchOverhead {
            rounds,
            round_trips,
            install_peers,
        } => setup::ensure().and_then(|env| {
            if install_peers {
                overhead::install_peers()?;
            }
            tasks::build(&env)?;
            overhead::bench(
                &env.workspace.join("target/release/tracer"),
                rounds,
                round_trips,
                &env.workspace.join("target"),
            )
        }),
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
