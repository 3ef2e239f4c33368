//! Drives a [`Session`] from timers, signals and `-- COMMAND` until it ends.

use std::{io, pin::pin, time::Duration};

use tokio::{
    signal::unix::{SignalKind, signal},
    task::JoinHandle,
    time::{Instant, Interval, MissedTickBehavior, sleep_until},
};

use super::{Options, RunError, Session, command};
use crate::probe::RETIRE_PERIOD;

/// How often the totals served to Prometheus are brought up to date.
pub const PROMETHEUS_REFRESH: Duration = Duration::from_secs(1);

/// `-- COMMAND` while it runs: its pid and the task waiting for its exit.
struct Running {
    pid: libc::pid_t,
    exit: JoinHandle<io::Result<u8>>,
}

/// Runs a tracing session; returns the exit code (COMMAND's, with
/// `-- COMMAND`).
pub async fn trace(opts: Options) -> Result<u8, RunError> {
    // Handlers first, so a Ctrl-C during loading is not lost.
    let mut sigint = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut session = Session::start(&opts)?;
    let mut refresh = every(PROMETHEUS_REFRESH);
    // `--per-process`: take exited processes out of the kernel's tables
    // often enough that they never fill under churn (see `Probes::retire_exited`).
    let mut retire = every(RETIRE_PERIOD);
    let mut command = start_command(&mut session, &opts.command)?;
    if !opts.report.json {
        eprintln!("tracer: tracing context switches {}", banner(&opts, command.is_some()));
    }

    let started = Instant::now();
    let deadline = opts.duration.map(|d| started + d);
    let mut next_tick = opts.interval.map(|i| started + i);
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
                Some(c) => (&mut c.exit).await,
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
            _ = refresh.tick(), if session.serves_prometheus() => {
                session.refresh_prometheus()?;
                continue;
            }
            _ = retire.tick(), if opts.probe.per_process => {
                session.retire_exited();
                continue;
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let (Some(tick), Some(interval)) = (next_tick.as_mut(), opts.interval) {
            if !session.tick()? {
                return Ok(exit_code);
            }
            *tick += interval;
        }
    }
    session.finish(opts.interval.is_some())?;
    match command {
        Some(running) => outlive(running, forwarded, exit_code).await,
        None => Ok(exit_code),
    }
}

/// Tracing ended first (signal, --duration): the command goes on untraced
/// unless told to stop; pass a signal on and report its exit.
async fn outlive(running: Running, forwarded: Option<libc::c_int>, exit_code: u8) -> Result<u8, RunError> {
    let Some(sig) = forwarded else {
        return Ok(exit_code);
    };
    // SAFETY: signals our own child, which has not been reaped yet.
    unsafe { libc::kill(running.pid, sig) };
    running
        .exit
        .await
        .map_err(|e| RunError::Wait(io::Error::other(e)))?
        .map_err(RunError::Wait)
}

/// A timer firing every `period`, first one `period` from now; late ticks
/// are not made up for.
fn every(period: Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// `-- COMMAND`: started held, traced from before its first instruction.
fn start_command(session: &mut Session, argv: &[std::ffi::OsString]) -> Result<Option<Running>, RunError> {
    if argv.is_empty() {
        return Ok(None);
    }
    let mut launched = command::launch(argv)?;
    let pid = launched.pid;
    if let Err(e) = session.add_process(pid as u32) {
        // SAFETY: kills and reaps our own, still held, child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = command::wait(pid);
        return Err(e.into());
    }
    launched.release()?;
    Ok(Some(Running {
        pid,
        exit: tokio::task::spawn_blocking(move || command::wait(pid)),
    }))
}

/// What is traced and until when, for the line on stderr.
fn banner(opts: &Options, command: bool) -> String {
    let what = if !opts.command.is_empty() {
        format!("of `{}`", command::display(&opts.command))
    } else if opts.probe.filter.bits() != 0 {
        "that match the filters".to_owned()
    } else {
        "system-wide".to_owned()
    };
    let until = match (opts.duration, command) {
        (Some(d), _) => format!("for {}", crate::report::fmt_ns(d.as_nanos() as u64)),
        (None, true) => "until it exits".into(),
        (None, false) => "until Ctrl-C".into(),
    };
    format!("{what} {until}")
}
