//! What runs beside the workload in each variant of the overhead benchmark:
//! nothing, the floors (empty programs), tracer's modes, and the peers that
//! measure the same things.

/// One way of running the workload.
pub struct Variant {
    /// Short key, used by the targets and in JSON.
    pub key: &'static str,
    /// What a reader sees.
    pub name: &'static str,
    /// The commands that run beside the workload, together (none: untraced).
    /// Program `"tracer"` is the tracer being benchmarked.
    pub beside: &'static [Command],
}

/// A command and its arguments.
pub type Command = (&'static str, &'static [&'static str]);

/// The bpftrace peer: classifies switches as same / different process from
/// the classic tracepoint, with a tid -> tgid map filled at switch-out.
const BPFTRACE_CLASSIFIER: &str = "tracepoint:sched:sched_switch { @tgid[tid] = pid; \
if (@tgid[args->next_pid] == pid) { @same = count(); } else { @cross = count(); } }";

/// Where `perf sched record` writes (deleted after each of its runs).
pub const PERF_DATA: &str = "/tmp/tracer-bench-perf.data";

const RUNQLAT: Command = ("runqlat", &[]);
const CPUDIST: Command = ("cpudist", &[]);

pub const VARIANTS: &[Variant] = &[
    Variant {
        key: "untraced",
        name: "untraced",
        beside: &[],
    },
    Variant {
        key: "floor1",
        name: "floor: empty tp_btf program on sched_switch",
        beside: &[("tracer", &["floor"])],
    },
    Variant {
        key: "floor2",
        name: "floor: empty tp_btf programs on sched_switch and sched_exit_tp",
        beside: &[("tracer", &["floor", "--with-exit"])],
    },
    Variant {
        key: "none",
        name: "tracer -m none (classify + count)",
        beside: &[("tracer", &["--json", "-m", "none"])],
    },
    Variant {
        key: "switch",
        name: "tracer -m switch (+ switch cost)",
        beside: &[("tracer", &["--json", "-m", "switch"])],
    },
    Variant {
        key: "oncpu",
        name: "tracer -m oncpu",
        beside: &[("tracer", &["--json", "-m", "oncpu"])],
    },
    Variant {
        key: "runq",
        name: "tracer -m runq",
        beside: &[("tracer", &["--json", "-m", "runq"])],
    },
    Variant {
        key: "default",
        name: "tracer (default: all four latencies)",
        beside: &[("tracer", &["--json"])],
    },
    Variant {
        key: "cpudist",
        name: "peer: libbpf-tools cpudist",
        beside: &[CPUDIST],
    },
    Variant {
        key: "runqlat",
        name: "peer: libbpf-tools runqlat",
        beside: &[RUNQLAT],
    },
    Variant {
        key: "runqlat+cpudist",
        name: "peers: runqlat and cpudist together",
        beside: &[RUNQLAT, CPUDIST],
    },
    Variant {
        key: "bpftrace",
        name: "peer: bpftrace same/cross-process classifier",
        beside: &[("bpftrace", &["-e", BPFTRACE_CLASSIFIER])],
    },
    Variant {
        key: "perf",
        name: "peer: perf sched record",
        beside: &[("perf", &["sched", "record", "-o", PERF_DATA])],
    },
];

/// Whether a program is on PATH (or is the tracer).
pub fn available(program: &str) -> bool {
    program == "tracer"
        || std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// The variants whose commands are all installed, untraced first, and, with
/// `only`, those keys alone (the targets' comparisons need their partners).
pub fn runnable(only: &[String]) -> anyhow::Result<Vec<&'static Variant>> {
    if let Some(bad) = only.iter().find(|k| !VARIANTS.iter().any(|v| v.key == k.as_str())) {
        let keys: Vec<&str> = VARIANTS.iter().map(|v| v.key).collect();
        anyhow::bail!("unknown variant `{bad}` (known: {})", keys.join(", "));
    }
    Ok(VARIANTS
        .iter()
        .filter(|v| v.key == "untraced" || only.is_empty() || only.iter().any(|k| k == v.key))
        .filter(|v| {
            let missing = v.beside.iter().find(|(program, _)| !available(program));
            if let Some((program, _)) = missing {
                eprintln!(
                    "xtask: skipping `{}`: {program} is not installed (--install-peers installs the peers)",
                    v.name
                );
            }
            missing.is_none()
        })
        .collect())
}
