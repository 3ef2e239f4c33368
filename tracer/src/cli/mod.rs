//! Command-line flags, and the options they turn into.

mod commands;
pub mod duration;
pub mod generate;
mod help;
mod parse;
pub mod run;
pub mod size;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Parser, ValueEnum};
pub use commands::*;
use help::{ABOUT, AFTER_HELP, LONG_ABOUT};
pub use parse::CpuList;
use parse::{parse_cpus, parse_duration, parse_label, parse_listen, parse_metrics};

use crate::{
    export::label::Label,
    probe::{
        ProbeOptions,
        filter::{Filter, FilterError},
    },
    session::{self, Exports, ReportOptions},
    snapshot::metrics::MetricSet,
};

/// `tracer --version`: the crate's version and the git commit it was built
/// from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TRACER_GIT_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "tracer",
    version = VERSION,
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
    /// tracepoint (classic tracepoints, for kernels without BTF: every
    /// metric, every filter but --cgroup), or auto (tp_btf where the kernel
    /// has BTF).
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

    /// The tracing session these flags ask for, with the filter checked
    /// against the running system.
    pub fn session_options(&self) -> Result<session::Options, FilterError> {
        let filter = Filter::new(
            &self.pids,
            &self.tids,
            self.comm.as_deref(),
            self.cpus.as_ref().map(|c| c.0.as_slice()),
            self.cgroup.as_deref(),
            !self.run.is_empty(),
        )?;
        Ok(session::Options {
            probe: ProbeOptions {
                metrics: self.metrics,
                filter,
                per_process: self.per_process,
                probe: self.probe.into(),
                offcpu_slots: None,
            },
            self_stats: self.self_stats,
            duration: self.duration,
            interval: self.interval,
            report: ReportOptions {
                json: self.json,
                histograms: self.hist,
                top: self.top,
            },
            exports: Exports {
                prometheus: self.prometheus,
                labels: self.labels.clone(),
                hdr_log: self.hdr_log.clone(),
                plot: self.plot.clone(),
            },
            command: self.run.clone(),
        })
    }
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
        assert_eq!((b.runs, b.working_set, b.round_trips, b.sweep), (3, 65536, None, false));
        assert!(matches!(b.via, ViaArg::Futex));
        assert!(Cli::try_parse_from(["tracer", "bench", "--runs", "0"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "bench", "--working-set", "2G"]).is_err());
        assert!(Cli::try_parse_from(["tracer", "-d", "1s", "bench"]).is_err());
        let cli =
            Cli::try_parse_from(["tracer", "bench", "--sweep", "--rings", "2,8", "--working-sets", "0,1M"]).unwrap();
        let Some(Command::Bench(b)) = cli.command else {
            panic!("no bench")
        };
        assert_eq!((b.rings, b.working_sets), (vec![2, 8], vec![0, 1 << 20]));
        for bad in [
            &["bench", "--rings", "2"][..],
            &["bench", "--sweep", "--rings", "1"],
            &["bench", "--sweep", "--working-set", "4K"],
            &["bench", "--sweep", "--working-sets", "2G"],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("tracer").chain(bad.iter().copied())).is_err(),
                "{bad:?}"
            );
        }
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
