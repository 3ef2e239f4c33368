//! Starting what runs beside the workload, knowing when it is attached, and
//! stopping it.

use std::{
    ffi::OsStr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{
    progs::{self, Listing, StatsOn},
    variants::{PERF_DATA, Variant},
};

/// How long a variant may take to attach (bpftrace compiles first).
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// After the first of its programs has run, the time its other programs
/// (attached right after, by the same process) are given.
const SETTLE: Duration = Duration::from_millis(300);

/// The commands of a variant, stopped (SIGINT, then SIGKILL) when dropped.
pub struct Beside(Vec<Child>);

impl Drop for Beside {
    fn drop(&mut self) {
        for child in &self.0 {
            // SAFETY: signals our own child, which has not been waited for.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        for child in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Why a variant could not start.
pub enum NotReady {
    /// One of its commands exited first (e.g. no `sched_exit_tp` here).
    Exited(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for NotReady {
    fn from(e: anyhow::Error) -> Self {
        NotReady::Failed(e)
    }
}

/// Starts `v`'s commands and returns once they are attached: one of the
/// programs they loaded has run (by `stats`), or, for perf, its data file
/// exists. `existing` is the program listing from before.
pub fn start(v: &Variant, tracer: &Path, stats: &mut StatsOn, existing: &Listing) -> Result<Beside, NotReady> {
    let mut beside = Beside(Vec::new());
    for (program, args) in v.beside {
        let command = if *program == "tracer" {
            tracer.as_os_str()
        } else {
            OsStr::new(program)
        };
        let child = Command::new(command)
            .args(*args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {program} for `{}`", v.name))?;
        beside.0.push(child);
    }
    let uses_bpf = v.beside.iter().any(|(program, _)| *program != "perf");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        for child in &mut beside.0 {
            if let Some(status) = child.try_wait().context("waiting for a variant")? {
                return Err(NotReady::Exited(format!("it exited ({status}) before attaching")));
            }
        }
        let ready = if uses_bpf {
            progs::new_program_ran(existing, &stats.listing()?)
        } else {
            Path::new(PERF_DATA).exists()
        };
        if ready {
            std::thread::sleep(SETTLE);
            return Ok(beside);
        }
        if Instant::now() > deadline {
            return Err(NotReady::Failed(anyhow::anyhow!(
                "`{}` did not attach within {READY_TIMEOUT:?}",
                v.name
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One run of a pinned ping-pong (`--kind`): (elapsed ns, the workload's own
/// switch count).
pub fn workload(tracer: &Path, kind: &str, cpu: usize, round_trips: u64) -> anyhow::Result<(f64, f64)> {
    let out = Command::new(tracer)
        .args(["ping-pong", "--kind", kind, "--cpu", &cpu.to_string()])
        .args(["--round-trips", &round_trips.to_string()])
        .output()
        .context("running the ping-pong")?;
    if !out.status.success() {
        bail!("workload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).context("the ping-pong's JSON")?;
    let field = |k: &str| v[k].as_f64().with_context(|| format!("ping-pong JSON without {k}"));
    Ok((field("elapsed_ns")?, field("switches")?))
}
