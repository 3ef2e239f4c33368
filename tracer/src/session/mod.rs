//! The tracing session: attach, report per interval and at the end, detach
//! on Ctrl-C, SIGTERM or the end of `--duration`.

pub mod command;

use std::{
    io::{self, Write},
    pin::pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    time::{Instant, sleep_until},
};

use crate::{
    cli::Cli,
    export::{
        OutputFileError, create_output,
        hdrlog::{HdrLog, HdrLogError},
        http::{self, ListenError},
        plot::{self, PlotError},
        prometheus::Exporter,
    },
    probe::filter::{Filter, FilterError},
    probe::{ProbeError, ProbeOptions, Probes, RETIRE_PERIOD},
    report::{Meta, Report, json, table},
    session::command::CommandError,
    snapshot::Snapshot,
    snapshot::metrics::MetricSet,
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("cannot wait for the command: {0}")]
    Wait(io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(io::Error),
    #[error("cannot write the report: {0}")]
    Output(io::Error),
    #[error(transparent)]
    OutputFile(#[from] OutputFileError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    HdrLog(#[from] HdrLogError),
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// How often the totals served to Prometheus are brought up to date.
pub const PROMETHEUS_REFRESH: Duration = Duration::from_secs(1);

/// Where reports go; a closed pipe ends the session quietly.
struct Output {
    json: bool,
    histograms: MetricSet,
}

impl Output {
    /// Writes one report. `Ok(false)` when stdout is a closed pipe.
    fn emit(&self, report: &Report) -> Result<bool, RunError> {
        let text = if self.json {
            let mut line = json::render(report);
            line.push('\n');
            line
        } else {
            let mut text = table::render(report, self.histograms);
            text.push('\n');
            text
        };
        let mut stdout = io::stdout().lock();
        match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(RunError::Output(e)),
        }
    }
}

/// Runs a tracing session as the CLI describes; returns the exit code
/// (COMMAND's, with `-- COMMAND`).
pub async fn trace(cli: &Cli) -> Result<u8, RunError> {
    // Handlers first, so a Ctrl-C during loading is not lost.
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;

    let filter = Filter::new(
        &cli.pids,
        &cli.tids,
        cli.comm.as_deref(),
        cli.cpus.as_ref().map(|c| c.0.as_slice()),
        cli.cgroup.as_deref(),
        !cli.run.is_empty(),
    )?;
    // Outputs that can fail are opened before anything is attached.
    let hdr_file = cli.hdr_log.as_deref().map(create_output).transpose()?;
    let plot_file = cli.plot.as_deref().map(create_output).transpose()?;
    let listener = cli.prometheus.map(http::bind).transpose()?;

    let loading = std::time::Instant::now();
    let mut probes = Probes::attach(ProbeOptions {
        metrics: cli.metrics,
        filter: filter.clone(),
        per_process: cli.per_process,
        probe: cli.probe.into(),
        offcpu_slots: None,
    })?;
    for note in &probes.notes {
        eprintln!("tracer: {note}");
    }
    if cli.self_stats {
        probes.enable_stats()?;
    }
    log::info!("loaded and attached in {:?}", loading.elapsed());
    if let Some(logger) = probes.take_logger() {
        spawn_kernel_log(logger);
    }
    let mut meta = meta(&probes, cli.metrics);
    meta.top = cli.top;
    for (metric, why) in &meta.unavailable {
        eprintln!(
            "tracer: {} unavailable: {why}; still classifying and counting every switch",
            metric.key()
        );
    }
    let out = Output {
        json: cli.json,
        histograms: cli.hist,
    };

    // The report starts here, before a command runs its first instruction.
    let mut previous = probes.snapshot()?;
    // For the exporter and the plot, which do not show processes.
    let first = Snapshot {
        procs: None,
        ..previous.clone()
    };
    let mut hdr_log = hdr_file
        .map(|file| HdrLog::start(file, first.taken_ns, SystemTime::now()))
        .transpose()?;
    let exporter = listener.map(|listener| {
        let exporter = Arc::new(Exporter::new(cli.labels.clone()));
        exporter.publish(first.since(&first));
        if let (false, Ok(addr)) = (cli.json, listener.local_addr()) {
            eprintln!("tracer: serving Prometheus metrics at http://{addr}/metrics");
        }
        (exporter.clone(), tokio::spawn(http::serve(listener, exporter)))
    });
    let mut refresh = tokio::time::interval_at(Instant::now() + PROMETHEUS_REFRESH, PROMETHEUS_REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `--per-process`: take exited processes out of the kernel's tables
    // often enough that they never fill under churn (see `Probes::retire_exited`).
    let mut retire = tokio::time::interval_at(Instant::now() + RETIRE_PERIOD, RETIRE_PERIOD);
    retire.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // `-- COMMAND`: started held, traced from before its first instruction.
    let mut command = None;
    let mut command_pid = 0;
    if !cli.run.is_empty() {
        let mut launched = command::launch(&cli.run)?;
        let pid = launched.pid;
        let traced = probes.add_process(pid as u32);
        if let Err(e) = traced {
            // SAFETY: kills and reaps our own, still held, child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = command::wait(pid);
            return Err(e.into());
        }
        launched.release()?;
        command_pid = pid;
        command = Some(tokio::task::spawn_blocking(move || command::wait(pid)));
    }
    if !cli.json {
        let what = if !cli.run.is_empty() {
            format!("of `{}`", command::display(&cli.run))
        } else if filter.bits() != 0 {
            "that match the filters".to_owned()
        } else {
            "system-wide".to_owned()
        };
        let until = match (cli.duration, &command) {
            (Some(d), _) => format!("for {}", crate::report::fmt_ns(d.as_nanos() as u64)),
            (None, Some(_)) => "until it exits".into(),
            (None, None) => "until Ctrl-C".into(),
        };
        eprintln!("tracer: tracing context switches {what} {until}");
    }

    let started = Instant::now();
    let deadline = cli.duration.map(|d| started + d);
    let mut next_tick = cli.interval.map(|i| started + i);
    let mut exit_code = 0;
    let mut forwarded = None;
    loop {
        let wake = match (deadline, next_tick) {
            (Some(d), Some(t)) => Some(d.min(t)),
            (d, t) => d.or(t),
        };
        let timer = pin!(async move {
            match wake {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        });
        let exited = pin!(async {
            match command.as_mut() {
                Some(handle) => handle.await,
                None => std::future::pending().await,
            }
        });
        tokio::select! {
            () = timer => {}
            status = exited => {
                command = None;
                let status = status.map_err(|e| RunError::Wait(io::Error::other(e)))?;
                exit_code = status.map_err(RunError::Wait)?;
                break;
            }
            _ = sigint.recv() => { forwarded = Some(libc::SIGINT); break }
            _ = sigterm.recv() => { forwarded = Some(libc::SIGTERM); break }
            _ = refresh.tick(), if exporter.is_some() => {
                if let Some((exporter, _)) = &exporter {
                    exporter.publish(probes.snapshot_totals()?.since(&first));
                }
                continue;
            }
            _ = retire.tick(), if cli.per_process => {
                probes.retire_exited();
                continue;
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let (Some(tick), Some(interval)) = (next_tick.as_mut(), cli.interval) {
            let now = probes.snapshot()?;
            if let Some(log) = hdr_log.as_mut() {
                log.write_interval(&previous, &now)?;
            }
            if !out.emit(&Report::between(&previous, &now, meta.clone()))? {
                return Ok(exit_code);
            }
            previous = now;
            *tick += interval;
        }
    }
    let last = probes.snapshot()?;
    drop(probes); // Detach before printing.
    if let Some((_, server)) = exporter {
        server.abort();
    }
    let report = Report::between(&previous, &last, meta);
    if cli.interval.is_none() || report.duration_ns >= Duration::from_millis(1).as_nanos() as u64 {
        if let Some(log) = hdr_log.as_mut() {
            log.write_interval(&previous, &last)?;
        }
        out.emit(&report)?;
    }
    if let Some(file) = plot_file {
        plot::write(file, &plot::charts(&last.since(&first)))?;
    }
    // Tracing ended first (signal, --duration): the command goes on untraced
    // unless told to stop; pass a signal on and report its exit.
    if let Some(handle) = command {
        let Some(sig) = forwarded else {
            return Ok(exit_code);
        };
        // SAFETY: signals our own child, which has not been reaped yet.
        unsafe { libc::kill(command_pid, sig) };
        exit_code = handle
            .await
            .map_err(|e| RunError::Wait(io::Error::other(e)))?
            .map_err(RunError::Wait)?;
    }
    Ok(exit_code)
}

/// Forwards kernel-side diagnostics (aya-log) to the `log` output.
fn spawn_kernel_log(logger: aya_log::EbpfLogger<&'static dyn log::Log>) {
    // SAFETY: the logger owns its ring-buffer fd for as long as the AsyncFd
    // holds it, and flushing neither closes nor replaces that fd.
    let registered = unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    let mut logger = match registered {
        Ok(fd) => fd,
        Err(e) => {
            log::warn!("kernel-side diagnostics unavailable: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = logger.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}

/// What a report says about where its numbers came from: `selected` is what
/// the user asked for.
pub fn meta(probes: &Probes, selected: MetricSet) -> Meta {
    Meta {
        kernel_release: crate::kernel::release(),
        probe: probes.probe,
        selected,
        unavailable: probes.missing(selected),
        top: 20,
        filtered: probes.filtered,
    }
}

/// Builds a report straight from two snapshots, for callers that drive
/// [`Probes`] themselves (tests, benchmarks): every measured metric.
pub fn report(probes: &Probes, earlier: &Snapshot, now: &Snapshot) -> Report {
    Report::between(earlier, now, meta(probes, probes.measured))
}
