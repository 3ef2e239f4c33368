//! Command-line flags.

pub mod duration;
pub mod size;

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::{export::label::Label, snapshot::metrics::MetricSet};

const ABOUT: &str = "Watch real context switches with eBPF and show what they cost.";

const LONG_ABOUT: &str = "\
Watch real context switches with eBPF and show what they cost.

Every switch (one CPU stops running `prev` and starts running `next`) is
counted once, in the kernel, in exactly one class, first match wins:
  idle     prev or next is the CPU's idle task
  kernel   prev or next is a kernel thread (PF_KTHREAD)
  thread   both tasks belong to the same process (same tgid): no address-space switch
  process  different processes: an address-space switch

Each switch is also voluntary (prev blocked) or preempted, split exactly as the
kernel splits its own nvcsw/nivcsw counters.

Latencies, per class (--metrics), each belonging to the class of the switch
that ends it:
  switch_cost_ns   from sched_switch, as prev leaves, until the incoming task
                   runs again on the same CPU (sched_exit_tp, Linux 6.16+).
                   Includes what the tracer's own two probes run between
                   their timestamps (the end of one, the start of the other).
  runq_latency_ns  from the moment the task became runnable (woken: sched_waking,
                   or sched_wakeup_new; or switched out still runnable) until
                   it is switched in: waiting for a CPU (perf sched timehist's
                   'sch delay'; runqlat starts later for a wakeup onto an idle
                   CPU, once that CPU has left idle)
  offcpu_ns        from a task's last switch-out until its switch-in
  oncpu_ns         from a task's switch-in until its switch-out (its slice)
A latency this kernel cannot give is reported as unavailable, never as zero.

Traces the whole system until Ctrl-C (or --duration), then prints a report.
Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.";

const AFTER_HELP: &str = "\
Examples:
  sudo tracer                 trace until Ctrl-C, then print the report
  sudo tracer -d 10s          trace for 10 seconds
  sudo tracer -i 1s --json    one JSON object per second, one per line
  sudo tracer -m none         only classify and count (one probe, least overhead)
  sudo tracer -p 1234 --per-process -d 30s
                              one application, with a table per process
  sudo tracer -- make -j2     trace a command's process tree until it exits
  sudo tracer --prometheus 9464
                              serve /metrics on 127.0.0.1:9464 until stopped
  sudo tracer -i 10s --hdr-log run.hlog --plot run.svg -d 1m
                              HdrHistogram log per 10 s, percentile plot at the end

Exit status: 0 on success (also after Ctrl-C or SIGTERM), 1 when tracing could
not start or failed, 2 for invalid arguments.";

#[derive(Debug, Parser)]
#[command(
    name = "tracer",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Stop after this long: 10s, 500ms, 2m, 1h; a bare number is seconds.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Print a report every DURATION (each covers that interval only).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// Print JSON: one object per report, one line each.
    #[arg(long)]
    pub json: bool,

    /// Latencies to measure, comma-separated: switch, runq, offcpu, oncpu, or
    /// all / none (none: only classify and count). A metric not selected is
    /// not in the report and its probes are not attached.
    #[arg(short, long, value_name = "LIST", default_value = "all", value_parser = parse_metrics)]
    pub metrics: MetricSet,

    /// Trace only switches where prev or next belongs to one of these
    /// processes (comma-separated process ids).
    #[arg(short = 'p', long = "pid", value_name = "TGID", value_delimiter = ',')]
    pub pids: Vec<u32>,

    /// Trace only switches where prev or next is one of these threads.
    #[arg(short = 't', long = "tid", value_name = "TID", value_delimiter = ',')]
    pub tids: Vec<u32>,

    /// Trace only switches where prev or next has exactly this task name
    /// (as in /proc/PID/comm, at most 15 bytes).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub comm: Option<String>,

    /// Trace only switches on these CPUs, e.g. 0-3,7.
    #[arg(long = "cpu", value_name = "LIST", value_parser = parse_cpus)]
    pub cpus: Option<CpuList>,

    /// Trace only switches where prev or next is in this cgroup v2 or below
    /// it (a directory under the cgroup2 mount, or a path relative to it).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    /// Add a table of switches per process (JSON: "processes"), by class,
    /// out (one of its tasks leaves the CPU) and in. Processes that exited
    /// stay in it; beyond 65,536 of them, those with the fewest switches out
    /// are summed in one row: tgid 0, named "(exited)".
    #[arg(long)]
    pub per_process: bool,

    /// How many processes --per-process shows, most switches out first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,

    /// Start COMMAND, trace only its process tree (every thread and child it
    /// creates, also after exec), stop when it exits, and exit with its
    /// status. Under sudo it runs as the invoking user.
    #[arg(last = true, value_name = "COMMAND", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub run: Vec<std::ffi::OsString>,

    /// Also report what tracer itself costs: per kernel program its runs and
    /// mean ns per run (BPF run-time statistics, on for this run only), and
    /// tracer's own CPU time and RSS.
    #[arg(long)]
    pub self_stats: bool,

    /// Kernel programs to use: tp_btf (BTF tracepoints, everything works),
    /// tracepoint (classic tracepoints, for kernels without BTF: no run-queue
    /// or off-CPU time, no --cgroup), or auto (tp_btf where the kernel has
    /// BTF).
    #[arg(long, value_enum, default_value_t = ProbeArg::Auto)]
    pub probe: ProbeArg,

    /// Metrics to draw log2 histograms of, per class, in the human report
    /// (same names as --metrics).
    #[arg(long, value_name = "LIST", default_value = "switch", value_parser = parse_metrics)]
    pub hist: MetricSet,

    /// Serve the counters and latency histograms (cumulative since tracing
    /// started) at http://ADDR/metrics in the Prometheus / OpenMetrics text
    /// format while tracing. ADDR is HOST:PORT, or a PORT alone for
    /// 127.0.0.1:PORT (loopback); name another address to be reachable.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub prometheus: Option<SocketAddr>,

    /// Add the label KEY=VALUE to every exported series (e.g. app=nginx,
    /// with --pid or -- COMMAND); may be given several times.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label, requires = "prometheus")]
    pub labels: Vec<Label>,

    /// Write each report's histograms (one per class and metric, in ns) to
    /// FILE in the HdrHistogram interval log format (V2, compressed).
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,

    /// At the end, write an SVG to FILE: latency by percentile, one chart per
    /// metric, one line per class, over the whole run.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// More diagnostics on stderr (-v: what was loaded and attached, -vv: debug).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}

impl Cli {
    /// Checks across flags that clap cannot express; the message is for a
    /// usage error.
    pub fn check(&self) -> Result<(), String> {
        if let Some(key) = crate::export::label::duplicate(&self.labels) {
            return Err(format!("--label {key}=... given more than once"));
        }
        if let (Some(log), Some(plot)) = (&self.hdr_log, &self.plot)
            && log == plot
        {
            return Err(format!("--hdr-log and --plot both name {}", log.display()));
        }
        Ok(())
    }
}

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

    /// Round trips per workload and run (each forces two switches).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub round_trips: u64,

    /// Memory each side touches between switches, e.g. 64K, 1M (shows the
    /// indirect cost of caches and TLB).
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = parse_size)]
    pub working_set: usize,

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeArg {
    Auto,
    #[value(name = "tp_btf")]
    TpBtf,
    Tracepoint,
}

impl From<ProbeArg> for crate::probe::ProbeKind {
    fn from(p: ProbeArg) -> Self {
        match p {
            ProbeArg::Auto => Self::Auto,
            ProbeArg::TpBtf => Self::TpBtf,
            ProbeArg::Tracepoint => Self::Tracepoint,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViaArg {
    Pipe,
    Futex,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let size = crate::cli::size::parse(s).map_err(|e| e.to_string())?;
    if size > 1 << 30 {
        return Err(format!("`{s}` is more than the 1 GiB limit for a working set"));
    }
    Ok(size)
}

/// CPU numbers from `--cpu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

fn parse_cpus(s: &str) -> Result<CpuList, String> {
    crate::probe::filter::parse_cpu_list(s)
        .map(CpuList)
        .map_err(|e| e.to_string())
}

fn parse_metrics(s: &str) -> Result<MetricSet, String> {
    MetricSet::parse(s).map_err(|e| e.to_string())
}

fn parse_label(s: &str) -> Result<Label, String> {
    crate::export::label::parse(s).map_err(|e| e.to_string())
}

/// `HOST:PORT` (`[::1]:PORT` for IPv6), or a bare `PORT` on loopback.
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse().map_err(|_| {
        format!("`{s}` is not an address to listen on: give HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464) or a port")
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::cli::duration::parse(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_durations_and_flags() {
        let cli =
            Cli::try_parse_from(["tracer", "-d", "2m", "-i", "500ms", "--json", "-vv", "-m", "runq,oncpu"]).unwrap();
        assert_eq!(cli.metrics.to_string(), "runq,oncpu");
        assert_eq!(cli.hist.to_string(), "switch");
        assert!(Cli::try_parse_from(["tracer", "-m", "cost"]).is_err());
        assert_eq!(cli.duration, Some(Duration::from_secs(120)));
        assert_eq!(cli.interval, Some(Duration::from_millis(500)));
        assert!(cli.json);
        assert_eq!(cli.verbose, 2);
        assert!(Cli::try_parse_from(["tracer", "-d", "soon"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "--bogus"]).is_err());
    }

    #[test]
    fn parses_filters_and_command() {
        let cli = Cli::try_parse_from([
            "tracer", "-p", "1,2", "-t", "3", "-c", "bash", "--cpu", "0-1", "--", "ls", "-l",
        ])
        .unwrap();
        assert_eq!(cli.pids, [1, 2]);
        assert_eq!(cli.tids, [3]);
        assert_eq!(cli.comm.as_deref(), Some("bash"));
        assert_eq!(cli.cpus, Some(CpuList(vec![0, 1])));
        assert_eq!(cli.run, ["ls", "-l"]);
        // Any bytes, as a command line allows.
        use std::os::unix::ffi::OsStrExt as _;
        let odd = std::ffi::OsStr::from_bytes(b"\xff\x1b");
        let cli = Cli::try_parse_from([std::ffi::OsStr::new("tracer"), std::ffi::OsStr::new("--"), odd]).unwrap();
        assert_eq!(cli.run, [odd]);
        assert!(Cli::try_parse_from(["tracer", "--cpu", "2-1"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "-p", "x"]).is_err());
    }

    #[test]
    fn parses_bench() {
        let cli = Cli::try_parse_from([
            "tracer",
            "bench",
            "--runs",
            "3",
            "--working-set",
            "64K",
            "--via",
            "futex",
        ])
        .unwrap();
        let Some(Command::Bench(b)) = cli.command else {
            panic!("no bench")
        };
        assert_eq!((b.runs, b.working_set, b.round_trips), (3, 65536, 100_000));
        assert!(matches!(b.via, ViaArg::Futex));
        assert!(Cli::try_parse_from(["tracer", "bench", "--runs", "0"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "bench", "--working-set", "2G"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "-d", "1s", "bench"]).is_err());
    }

    #[test]
    fn parses_exports() {
        let cli = Cli::try_parse_from([
            "tracer",
            "--prometheus",
            "9464",
            "--label",
            "app=web",
            "--label",
            "team=a",
            "--hdr-log",
            "x.hlog",
            "--plot",
            "x.svg",
        ])
        .unwrap();
        assert_eq!(cli.prometheus, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(cli.labels.len(), 2);
        assert_eq!(cli.check(), Ok(()));
        assert_eq!(cli.hdr_log.as_deref(), Some(std::path::Path::new("x.hlog")));
        let cli = Cli::try_parse_from(["tracer", "--prometheus", "[::1]:80"]).unwrap();
        assert_eq!(cli.prometheus, Some("[::1]:80".parse().unwrap()));
        assert!(Cli::try_parse_from(["tracer", "--prometheus", "localhost"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "--prometheus", "1.2.3.4:99999"]).is_err());
        // --label needs --prometheus, and a valid KEY=VALUE.
        assert!(Cli::try_parse_from(["tracer", "--label", "app=x"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "--prometheus", "1", "--label", "9=x"]).is_err());
        let twice = Cli::try_parse_from(["tracer", "--prometheus", "1", "--label", "a=x", "--label", "a=y"]).unwrap();
        assert!(twice.check().unwrap_err().contains("--label a="));
        let same = Cli::try_parse_from(["tracer", "--hdr-log", "x", "--plot", "x"]).unwrap();
        assert_eq!(same.check(), Err("--hdr-log and --plot both name x".into()));
    }

    proptest::proptest! {
        /// Pid and tid lists never panic the parser, and a list of numbers
        /// that fit parses to exactly those numbers.
        #[test]
        fn pid_lists_never_panic(s in "\\PC{0,40}|[0-9,]{0,40}") {
            for flag in ["-p", "-t"] {
                let _ = Cli::try_parse_from(["tracer", flag, s.as_str()]);
            }
        }

        #[test]
        fn pid_lists_parse_exactly(pids in proptest::collection::vec(1u32..=u32::MAX, 1..8)) {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            let cli = Cli::try_parse_from(["tracer", "-p", &list.join(",")]).unwrap();
            proptest::prop_assert_eq!(cli.pids, pids);
        }

        #[test]
        fn overflowing_pids_are_rejected(extra in 1u64..1_000_000) {
            let too_big = (u64::from(u32::MAX) + extra).to_string();
            proptest::prop_assert!(Cli::try_parse_from(["tracer", "-p", &too_big]).is_err());
        }
    }
}
