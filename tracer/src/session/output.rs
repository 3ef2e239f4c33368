//! Where a session's numbers go: reports on stdout, and the exports
//! (Prometheus endpoint, HdrHistogram log, plot).

use std::{
    fs::File,
    io::{self, Write},
    sync::Arc,
    time::SystemTime,
};

use tokio::{net::TcpListener, task::JoinHandle};

use super::{
    RunError,
    options::{Exports, ReportOptions},
};
use crate::{
    export::{create_output, hdrlog::HdrLog, http, plot, prometheus::Exporter},
    report::{Report, json, table},
    snapshot::Snapshot,
};

/// Writes one report to stdout. `Ok(false)` when stdout is a closed pipe.
pub(super) fn emit(opts: &ReportOptions, report: &Report) -> Result<bool, RunError> {
    let text = if opts.json {
        let mut line = json::render(report);
        line.push('\n');
        line
    } else {
        let mut text = table::render(report, opts.histograms);
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

/// The exports' files and socket, opened before anything is attached so
/// that a bad path or a busy port fails first.
pub(super) struct Opened {
    hdr_log: Option<File>,
    plot: Option<File>,
    listener: Option<TcpListener>,
}

impl Opened {
    pub(super) fn open(exports: &Exports) -> Result<Self, RunError> {
        Ok(Self {
            hdr_log: exports.hdr_log.as_deref().map(create_output).transpose()?,
            plot: exports.plot.as_deref().map(create_output).transpose()?,
            listener: exports.prometheus.map(http::bind).transpose()?,
        })
    }
}

/// The exports while tracing.
pub(super) struct Running {
    hdr_log: Option<HdrLog>,
    plot: Option<File>,
    exporter: Option<(Arc<Exporter>, JoinHandle<()>)>,
    /// The session's first snapshot without processes: the exporter and
    /// the plot show what happened since.
    first: Snapshot,
}

impl Running {
    /// Starts the exports at `first`, the session's first snapshot.
    pub(super) fn start(opened: Opened, exports: &Exports, first: &Snapshot, quiet: bool) -> Result<Self, RunError> {
        let first = Snapshot {
            procs: None,
            ..first.clone()
        };
        let hdr_log = opened
            .hdr_log
            .map(|file| HdrLog::start(file, first.taken_ns, SystemTime::now()))
            .transpose()?;
        let exporter = opened.listener.map(|listener| {
            let exporter = Arc::new(Exporter::new(exports.labels.clone()));
            exporter.publish(first.since(&first));
            if let (false, Ok(addr)) = (quiet, listener.local_addr()) {
                eprintln!("tracer: serving Prometheus metrics at http://{addr}/metrics");
            }
            (exporter.clone(), tokio::spawn(http::serve(listener, exporter)))
        });
        Ok(Self {
            hdr_log,
            plot: opened.plot,
            exporter,
            first,
        })
    }

    /// Whether a Prometheus endpoint is served (and needs refreshing).
    pub(super) fn serves(&self) -> bool {
        self.exporter.is_some()
    }

    /// Brings the totals served to Prometheus up to `totals` (cumulative).
    pub(super) fn publish(&self, totals: &Snapshot) {
        if let Some((exporter, _)) = &self.exporter {
            exporter.publish(totals.since(&self.first));
        }
    }

    /// Adds the interval from `earlier` to `now` to the HdrHistogram log.
    pub(super) fn interval(&mut self, earlier: &Snapshot, now: &Snapshot) -> Result<(), RunError> {
        if let Some(log) = self.hdr_log.as_mut() {
            log.write_interval(earlier, now)?;
        }
        Ok(())
    }

    /// Stops serving (tracing is over).
    pub(super) fn stop_serving(&mut self) {
        if let Some((_, server)) = self.exporter.take() {
            server.abort();
        }
    }

    /// Writes the plot of the whole run, up to `last`.
    pub(super) fn finish(self, last: &Snapshot) -> Result<(), RunError> {
        if let Some(file) = self.plot {
            plot::write(file, &plot::charts(&last.since(&self.first)))?;
        }
        Ok(())
    }
}
