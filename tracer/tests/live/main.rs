//! Live-kernel tests: load the real programs, run workloads with known ground
//! truth, and check what the tracer saw against the kernel's own accounting.
//! They need root and a BPF-capable kernel with BTF, so they are built only
//! with the `live-tests` feature; `cargo xtask test` turns it on and runs them
//! (through sudo when needed), one at a time. The helpers are in `support/`,
//! the tests in one file per topic.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tracer::{
    probe::{ProbeKind, ProbeOptions, Probes},
    snapshot::Snapshot,
    snapshot::metrics::{Metric, MetricSet},
    workload::{self, Outcome, PingPong, Spec},
};
use tracer_common::{Class, names};

mod classes;
mod cli;
mod exports;
mod filters;
mod perf_calibrate;
mod perf_cross;
mod reliability;
mod support;
mod sweep;
mod waits;

use support::{probes::*, tracer_cli::*, workloads::*};

const ROUND_TRIPS: u64 = 100_000;
const NEEDS_ROOT: &str = "needs root and a kernel with BPF and BTF: run `cargo xtask test`";
