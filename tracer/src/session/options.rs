//! What a tracing session is asked to do, validated before anything loads.

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use crate::{export::label::Label, probe::ProbeOptions, snapshot::metrics::MetricSet};

/// A tracing session's options: the command line, checked.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// What to attach: metrics, filter, per-process tables, probe kind.
    pub probe: ProbeOptions,
    /// Turn on BPF run-time statistics and report tracer's own cost.
    pub self_stats: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Report every interval (each report covers that interval only).
    pub interval: Option<Duration>,
    /// What the reports show and how.
    pub report: ReportOptions,
    /// Where else the numbers go.
    pub exports: Exports,
    /// `-- COMMAND`: start it and trace its process tree (empty: none).
    pub command: Vec<OsString>,
}

/// How reports are rendered on stdout.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// One JSON object per report instead of the table.
    pub json: bool,
    /// Metrics with log2 histograms in the table.
    pub histograms: MetricSet,
    /// Rows of the per-process table.
    pub top: usize,
}

/// Exports besides the reports.
#[derive(Clone, Debug, Default)]
pub struct Exports {
    /// Serve Prometheus / OpenMetrics at this address.
    pub prometheus: Option<SocketAddr>,
    /// Labels added to every exported series.
    pub labels: Vec<Label>,
    /// HdrHistogram interval log.
    pub hdr_log: Option<PathBuf>,
    /// SVG of percentiles at the end.
    pub plot: Option<PathBuf>,
}
