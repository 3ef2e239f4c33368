//! Golden outputs: `--help` of every command, and the table, JSON and
//! Prometheus renderings of reports built from a fake, deterministic event
//! source. They pin the bytes users and scripts see, so that moving code
//! around cannot change them unnoticed.
//!
//! After a deliberate change of output: `UPDATE_GOLDEN=1 cargo test --test
//! golden`, then review the diff of `tests/golden/`.

use std::{collections::BTreeMap, path::PathBuf};

use assert_cmd::Command;
use tracer::{
    export::{
        label,
        prometheus::{Exporter, Format},
    },
    probe::ProbeKind,
    report::{Meta, Report, json, table},
    snapshot::metrics::{Metric, MetricSet},
    snapshot::{MapMemory, OwnCost, ProcSnapshot, ProgramStats, Snapshot},
};
use tracer_common::Class;

/// Compares `actual` with `tests/golden/NAME`, or rewrites it when
/// `UPDATE_GOLDEN` is set.
fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from its golden file at line {}:\n  golden: {:?}\n  actual: {:?}\n(UPDATE_GOLDEN=1 rewrites it after a deliberate change)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

fn help(args: &[&str]) -> String {
    let out = Command::cargo_bin("tracer")
        .unwrap()
        .args(args)
        // clap wraps to the terminal; a fixed width makes the bytes repeatable.
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_of_every_command() {
    golden("help.txt", &help(&["--help"]));
    golden("help-short.txt", &help(&["-h"]));
    for sub in ["bench", "check", "ping-pong", "churn", "scenario", "soak-load", "floor"] {
        golden(&format!("help-{sub}.txt"), &help(&[sub, "--help"]));
    }
}

/// A deterministic pseudo-random sequence (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Log-uniform-ish value in [lo, lo * 2^span).
    fn latency(&mut self, lo: u64, span: u32) -> u64 {
        let shift = (self.next() % u64::from(span)) as u32;
        let base = lo << shift;
        base + self.next() % base.max(1)
    }
}

fn meta(selected: MetricSet, probe: ProbeKind) -> Meta {
    Meta {
        kernel_release: "6.18.0-golden".into(),
        probe: probe.name(),
        counts_unresolved: probe == ProbeKind::Tracepoint,
        selected,
        unavailable: Vec::new(),
        top: 3,
        filtered: false,
    }
}

/// Tracer's own cost: (runs, run ns) of its two programs, its CPU time and RSS.
fn own_cost(programs: [(u64, u64); 2], cpu_ns: u64, rss_bytes: u64) -> OwnCost {
    let names = ["sched_switch_btf", "sched_waking_btf"];
    OwnCost {
        programs: names
            .iter()
            .zip(programs)
            .map(|(name, (runs, run_ns))| ProgramStats {
                name: (*name).into(),
                runs,
                run_ns,
            })
            .collect(),
        maps: vec![
            MapMemory {
                name: "HISTS".into(),
                bytes: 262_144,
            },
            MapMemory {
                name: "CPU".into(),
                bytes: 544,
            },
        ],
        cpu_ns,
        rss_bytes,
    }
}

/// Two snapshots 2 s apart: switches of every class on two CPUs, with
/// every metric sampled; per-process counters; kernel count; own cost.
fn fake_source(metrics: MetricSet, per_process: bool) -> (Snapshot, Snapshot) {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut a = Snapshot::empty(2, metrics);
    a.taken_ns = 1_000_000_000;
    a.kernel_switches = Some(1_000_000);
    let mut b = a.clone();
    b.taken_ns = 3_000_000_000;
    let shapes = [
        (Class::Thread, 4000, 1_200, 900),
        (Class::Process, 2500, 1_800, 300),
        (Class::Kernel, 700, 2_400, 100),
        (Class::Idle, 1500, 900, 50),
    ];
    for (class, n, base, pre_every) in shapes {
        for i in 0..n {
            let samples: Vec<(Metric, u64)> = Metric::ALL
                .into_iter()
                .filter(|&m| metrics.contains(m))
                .map(|m| {
                    let v = match m {
                        Metric::SwitchCost => rng.latency(base, 3),
                        Metric::Runq => rng.latency(base * 2, 8),
                        Metric::Offcpu => rng.latency(base * 10, 12),
                        Metric::Oncpu => rng.latency(base * 5, 10),
                    };
                    (m, v)
                })
                .collect();
            b.record((i % 2) as usize, class, i % pre_every != 0, &samples);
        }
    }
    b.kernel_switches = Some(1_000_000 + 8_700 + 41);
    if per_process {
        let mut earlier = BTreeMap::new();
        let mut later = BTreeMap::new();
        for tgid in 1..=6u32 {
            let mut comm = [0u8; 16];
            let name: &[u8] = if tgid % 2 == 0 { b"evil\x1b[2J" } else { b"worker" };
            comm[..name.len()].copy_from_slice(name);
            let p0 = ProcSnapshot {
                comm,
                out: [u64::from(tgid); 4],
                r#in: [1; 4],
            };
            let mut p1 = p0.clone();
            for c in 0..4 {
                p1.out[c] += rng.next() % 500;
                p1.r#in[c] += rng.next() % 500;
            }
            earlier.insert(tgid, p0);
            later.insert(tgid, p1);
        }
        a.procs = Some(earlier);
        b.procs = Some(later);
        b.procs_dropped = 7;
    }
    a.own = Some(own_cost([(10, 2_000), (4, 300)], 5_000_000, 9 << 20));
    b.own = Some(own_cost([(8_710, 1_750_000), (4_504, 290_000)], 25_000_000, 11 << 20));
    (a, b)
}

#[test]
fn table_and_json_of_every_metric() {
    let (a, b) = fake_source(MetricSet::ALL, false);
    let report = Report::between(&a, &b, meta(MetricSet::ALL, ProbeKind::TpBtf));
    golden("report-all.txt", &table::render(&report, MetricSet::ALL));
    golden("report-all.json", &json::render(&report));
    golden("report-all-nohist.txt", &table::render(&report, MetricSet::NONE));
}

#[test]
fn table_and_json_with_processes_filters_and_unavailable_metrics() {
    let measured = MetricSet::NONE.with(Metric::SwitchCost).with(Metric::Oncpu);
    let (a, mut b) = fake_source(measured, true);
    b.unresolved = 12;
    b.kernel_switches = None;
    let mut m = meta(MetricSet::ALL, ProbeKind::Tracepoint);
    m.filtered = true;
    m.unavailable = vec![
        (Metric::Runq, "needs the tp_btf probe".into()),
        (Metric::Offcpu, "needs the tp_btf probe".into()),
    ];
    let report = Report::between(&a, &b, m);
    golden(
        "report-procs.txt",
        &table::render(&report, MetricSet::NONE.with(Metric::Oncpu)),
    );
    golden("report-procs.json", &json::render(&report));

    let (a, b) = fake_source(measured, true);
    let mut m = meta(MetricSet::ALL, ProbeKind::TpBtf);
    m.filtered = true;
    let report = Report::between(&a, &b, m);
    golden("report-filtered.txt", &table::render(&report, MetricSet::NONE));
}

#[test]
fn prometheus_exposition() {
    let (a, b) = fake_source(MetricSet::ALL, false);
    let exporter = Exporter::new(vec![
        label::parse("host=golden").unwrap(),
        label::parse("role=db").unwrap(),
    ]);
    exporter.publish(b.since(&a));
    golden("prometheus.txt", &exporter.render(Format::Text));
    golden("openmetrics.txt", &exporter.render(Format::OpenMetrics));
}
