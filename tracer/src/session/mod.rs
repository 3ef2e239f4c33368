//! The tracing session: attach, report per interval and at the end, detach
//! on Ctrl-C, SIGTERM or the end of `--duration`.
//!
//! [`Session`] is one session's state, driven in steps (start, one tick per
//! interval, finish); [`trace`] drives it from timers, signals and
//! `-- COMMAND`.

pub mod command;
mod kernel_log;
pub mod options;
mod output;
mod trace;

use std::io;

pub use options::{Exports, Options, ReportOptions};
pub use trace::trace;

use crate::{
    export::{OutputFileError, hdrlog::HdrLogError, http::ListenError, plot::PlotError},
    probe::{ProbeError, Probes},
    report::{Meta, Report},
    session::command::CommandError,
    snapshot::Snapshot,
};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
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

/// One tracing session between attach and detach.
pub struct Session {
    probes: Probes,
    meta: Meta,
    report: ReportOptions,
    exports: output::Running,
    /// Where the next report starts.
    previous: Snapshot,
}

impl Session {
    /// Opens the exports, attaches the probes and takes the first snapshot:
    /// the first report starts here. Says on stderr what the user should
    /// know about this run. Must run inside the tokio runtime.
    pub fn start(opts: &Options) -> Result<Self, RunError> {
        // Outputs that can fail are opened before anything is attached.
        let opened = output::Opened::open(&opts.exports)?;
        let loading = std::time::Instant::now();
        let mut probes = Probes::attach(opts.probe.clone())?;
        for note in &probes.notes {
            eprintln!("tracer: {note}");
        }
        if opts.self_stats {
            probes.enable_stats()?;
        }
        log::info!("loaded and attached in {:?}", loading.elapsed());
        if let Some(logger) = probes.take_logger() {
            kernel_log::spawn(logger);
        }
        let mut meta = meta(&probes, opts.probe.metrics);
        meta.top = opts.report.top;
        for (metric, why) in &meta.unavailable {
            eprintln!(
                "tracer: {} unavailable: {why}; still classifying and counting every switch",
                metric.key()
            );
        }
        let previous = probes.snapshot()?;
        let exports = output::Running::start(opened, &opts.exports, &previous, opts.report.json)?;
        Ok(Self {
            probes,
            meta,
            report: opts.report.clone(),
            exports,
            previous,
        })
    }

    /// Starts tracing a process (`-- COMMAND`, before it runs).
    pub fn add_process(&mut self, tgid: u32) -> Result<(), ProbeError> {
        self.probes.add_process(tgid)
    }

    /// Whether a Prometheus endpoint needs refreshing.
    pub fn serves_prometheus(&self) -> bool {
        self.exports.serves()
    }

    /// Brings the totals served to Prometheus up to date.
    pub fn refresh_prometheus(&mut self) -> Result<(), RunError> {
        let totals = self.probes.snapshot_totals()?;
        self.exports.publish(&totals);
        Ok(())
    }

    /// `--per-process`: takes exited processes out of the kernel's tables.
    pub fn retire_exited(&mut self) {
        self.probes.retire_exited();
    }

    /// The report of the interval since the last one (or the start).
    /// `Ok(false)` when stdout is a closed pipe: the session should end.
    pub fn tick(&mut self) -> Result<bool, RunError> {
        let now = self.probes.snapshot()?;
        self.exports.interval(&self.previous, &now)?;
        if !output::emit(&self.report, &Report::between(&self.previous, &now, self.meta.clone()))? {
            return Ok(false);
        }
        self.previous = now;
        Ok(true)
    }

    /// Detaches, then writes the last report (unless `interval` reports
    /// are on and it would cover under a millisecond) and the plot.
    pub fn finish(self, interval: bool) -> Result<(), RunError> {
        let Self {
            probes,
            meta,
            report: report_opts,
            mut exports,
            previous,
        } = self;
        let mut probes = probes;
        let last = probes.snapshot()?;
        drop(probes); // Detach before printing.
        exports.stop_serving();
        let report = Report::between(&previous, &last, meta);
        if !interval || report.duration_ns >= std::time::Duration::from_millis(1).as_nanos() as u64 {
            exports.interval(&previous, &last)?;
            output::emit(&report_opts, &report)?;
        }
        exports.finish(&last)
    }
}

/// What a report says about where its numbers came from: `selected` is what
/// the user asked for.
pub fn meta(probes: &Probes, selected: crate::snapshot::metrics::MetricSet) -> Meta {
    Meta {
        kernel_release: crate::kernel::release(),
        probe: probes.probe.name(),
        counts_unresolved: probes.probe == crate::probe::ProbeKind::Tracepoint,
        selected,
        unavailable: probes.missing(selected),
        top: 20,
        filtered: probes.filtered,
    }
}
