//! The subcommands and their flags.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::parse::{parse_ring, parse_size};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Settle "is a thread switch cheaper than a process switch?" on this host.
    ///
    /// Runs two pinned ping-pongs, two threads of one process and two
    /// processes bouncing a token (every round trip forces two switches),
    /// under tracer's own kernel programs, and compares their switch costs.
    /// Before concluding it checks that >= 99 % of each workload's switches
    /// were in the expected class, that the counts agree with the kernel's
    /// own accounting, and that pinning held; if not, it says so and gives
    /// no verdict.
    Bench(BenchArgs),
    /// Check that tracer works on this kernel, and show what it can measure.
    ///
    /// Attaches each probe in turn (tp_btf, then the classic tracepoint),
    /// runs a pinned thread ping-pong and a pinned process ping-pong under
    /// it, and compares the tracer's counts and latency totals with the
    /// kernel's own accounting (getrusage, /proc/thread-self/schedstat),
    /// each with a stated margin. Says which latencies this kernel cannot
    /// give and why. Exit status 0 when every probe that could attach
    /// passed, 1 otherwise.
    Check(CheckArgs),
    /// A workload with known ground truth, for tests: a pinned ping-pong;
    /// prints one JSON line with what the kernel counted.
    #[command(hide = true)]
    PingPong(PingPongArgs),
    /// Task churn with known ground truth, for tests: short-lived threads and
    /// processes; prints one JSON line with what the kernel counted.
    #[command(hide = true)]
    Churn(ChurnArgs),
    /// A workload for the cross-check against perf sched timehist, for
    /// tests: pinned to --cpu; prints one JSON line with its processes and
    /// its own clock.
    #[command(hide = true)]
    Scenario(ScenarioArgs),
    /// Load for soak tests: pinned ping-pongs and task churn in turn until
    /// the time is up; prints one JSON line with the kernel's counts.
    #[command(hide = true)]
    SoakLoad(SoakLoadArgs),
    /// For overhead benchmarks: attach only an empty program on sched_switch
    /// (and with --with-exit one on sched_exit_tp) until SIGINT/SIGTERM.
    #[command(hide = true)]
    Floor(FloorArgs),
    /// For overhead benchmarks: turn on the kernel's BPF run-time statistics
    /// until stdin closes; for each line read, print one JSON line with
    /// every loaded program's runs and run time, and /proc/stat's ctxt.
    #[command(hide = true)]
    BpfStats,
    /// For packaging: write the man pages into DIR/man and the bash, zsh and
    /// fish completions into DIR/completions.
    #[command(hide = true)]
    Generate {
        /// Where to write them.
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// Also attach an empty program on sched_exit_tp: the floor of two
    /// programs per switch.
    #[arg(long)]
    pub with_exit: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Round trips per workload (each forces two switches).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(100..=100_000_000))]
    pub round_trips: u64,

    /// The CPU to pin both workloads to (default: the last online CPU).
    #[arg(long)]
    pub cpu: Option<usize>,

    /// The probe to check: tp_btf, tracepoint, or all (both, one after the other).
    #[arg(long, value_enum, default_value_t = CheckProbeArg::All)]
    pub probe: CheckProbeArg,

    /// Print JSON (one object) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Off-CPU timestamp slots by thread id (default: the kernel's
    /// pid_max); threads with higher ids keep theirs in task storage. For
    /// tests of that path.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub offcpu_slots: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckProbeArg {
    All,
    #[value(name = "tp_btf")]
    TpBtf,
    Tracepoint,
}

#[derive(Debug, Args)]
pub struct SoakLoadArgs {
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Short-lived threads to start (each sleeps three times, then exits).
    #[arg(long, default_value_t = 50)]
    pub threads: u32,
    /// Short-lived child processes to fork (same).
    #[arg(long, default_value_t = 50)]
    pub processes: u32,
}

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    #[arg(value_enum)]
    pub name: ScenarioArg,
    /// The CPU the measured tasks run on.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
    /// The CPU of a helper that must not share it (the wakeups' writer).
    #[arg(long, default_value_t = 1)]
    pub other: usize,
    /// How long the timed scenarios run, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Iterations of fork-exec.
    #[arg(long, default_value_t = 300)]
    pub count: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScenarioArg {
    WakeIdle,
    WakePreempt,
    Spinners,
    ForkExec,
}

#[derive(Debug, Args)]
pub struct PingPongArgs {
    /// `threads` or `processes`.
    #[arg(long, value_enum, default_value_t = KindArg::Threads)]
    pub kind: KindArg,
    #[arg(long, default_value_t = 10_000)]
    pub round_trips: u64,
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
    /// Start only after a line arrives on stdin.
    #[arg(long)]
    pub wait_stdin: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Threads,
    Processes,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Repeat both workloads this many times (min / median / max across runs).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,

    /// Round trips per workload and run (each forces two switches) [default:
    /// 100000]; with --sweep, laps of the token round each ring [default:
    /// sized per cell, 2,000 to 20,000 switches a run].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub round_trips: Option<u64>,

    /// Memory each side touches between switches, e.g. 64K, 1M (shows the
    /// indirect cost of caches and TLB).
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = parse_size, conflicts_with = "sweep")]
    pub working_set: usize,

    /// The lat_ctx matrix: rings of threads and of processes passing a
    /// token on one CPU, by ring size and working set; direct switch cost,
    /// time per switch and refill, process/thread ratios, and verdicts.
    #[arg(long)]
    pub sweep: bool,

    /// With --sweep: the ring sizes (tasks per ring, each at least 2).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "2,4,8,16,32", value_parser = parse_ring, requires = "sweep")]
    pub rings: Vec<usize>,

    /// With --sweep: the working sets per task.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "0,4K,64K,256K,1M,4M", value_parser = parse_size, requires = "sweep")]
    pub working_sets: Vec<usize>,

    /// With --sweep: touch one word per cache line, or per page (the TLB case).
    #[arg(long, value_enum, default_value_t = TouchArg::Line, requires = "sweep")]
    pub touch: TouchArg,

    /// How the token travels.
    #[arg(long, value_enum, default_value_t = ViaArg::Pipe)]
    pub via: ViaArg,

    /// The CPU to pin both workloads to (default: the last online CPU).
    #[arg(long)]
    pub cpu: Option<usize>,

    /// Print JSON (one object) instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Also write an SVG to FILE: switch cost by percentile of the thread and
    /// the process workload (all runs together).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TouchArg {
    Line,
    Page,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViaArg {
    Pipe,
    Futex,
}
