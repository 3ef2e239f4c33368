//! Boots a kernel with the initramfs in QEMU (TCG, single-threaded) and reads
//! the markers its /init printed on the serial console into an `Outcome`.

use std::{
    fs,
    io::Read as _,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::{GuestArch, verdict::Outcome};

/// A guest that has not powered off by then is killed and fails.
const GUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Boots one kernel and collects what the guest printed.
pub(super) fn boot(
    label: &'static str,
    vmlinuz: &Path,
    initrd: &Path,
    dir: &Path,
    arch: &'static GuestArch,
) -> Outcome {
    let mut outcome = Outcome {
        label,
        release: String::new(),
        with_btf: None,
        without_btf: None,
        no_btf_message: None,
        cgroup: (None, None, None),
        per_process: [Vec::new(), Vec::new()],
        error: None,
    };
    let log_path = dir.join(format!("console-{}.log", label.replace(' ', "-")));
    let console = match run_qemu(vmlinuz, initrd, &Machine::matrix(arch)) {
        Ok(text) => text,
        Err(e) => {
            outcome.error = Some(format!("{e:#}"));
            return outcome;
        }
    };
    let _ = fs::write(&log_path, &console);
    let mut done = false;
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        let Some((marker, rest)) = line.strip_prefix("@@").map(|l| l.split_once(' ').unwrap_or((l, ""))) else {
            continue;
        };
        match marker {
            "release" => outcome.release = rest.to_owned(),
            "with-btf" => outcome.with_btf = serde_json::from_str(rest).ok(),
            "without-btf" => outcome.without_btf = serde_json::from_str(rest).ok(),
            "no-btf-message" => outcome.no_btf_message = Some(rest.to_owned()),
            "cgroup-report" => {
                let report: Option<Value> = serde_json::from_str(rest).ok();
                if let Some(n) = report.and_then(|r| r["classes"]["process"]["switches"].as_u64()) {
                    *outcome.cgroup.0.get_or_insert(0) += n;
                }
            }
            "cgroup-in" => outcome.cgroup.1 = serde_json::from_str(rest).ok(),
            "cgroup-out" => outcome.cgroup.2 = serde_json::from_str(rest).ok(),
            "per-process-btf" | "per-process-no-btf" => {
                let i = usize::from(marker == "per-process-no-btf");
                if let Ok(v) = serde_json::from_str(rest) {
                    outcome.per_process[i].push(v);
                }
            }
            "done" => done = true,
            _ => {}
        }
    }
    if !done {
        // The kernel's last words say most (e.g. a panic).
        let last = console
            .lines()
            .rev()
            .find(|l| l.contains("panic") || l.contains("BUG") || l.contains("Oops"))
            .or_else(|| console.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("(no output)");
        outcome.error = Some(format!(
            "the guest did not finish its checks: `{}` (console in {})",
            last.trim(),
            log_path.display()
        ));
    } else if outcome.with_btf.is_none() || outcome.without_btf.is_none() {
        outcome.error = Some(format!(
            "tracer check printed no result (console in {})",
            log_path.display()
        ));
    }
    outcome
}

/// The guest's virtual hardware.
pub(crate) struct Machine {
    pub arch: &'static GuestArch,
    pub cpus: usize,
    pub memory_mib: usize,
}

impl Machine {
    /// The kernel matrix's guests.
    fn matrix(arch: &'static GuestArch) -> Machine {
        Machine {
            arch,
            cpus: 2,
            memory_mib: 1024,
        }
    }
}

/// Runs QEMU until the guest powers off; returns its serial console.
pub(crate) fn run_qemu(vmlinuz: &Path, initrd: &Path, machine: &Machine) -> anyhow::Result<String> {
    let mut child = Command::new(machine.arch.qemu)
        // Software emulation, one host thread: KVM here is nested and cannot
        // boot stock kernels, and multi-threaded TCG in QEMU 7.2 has crashed
        // a 7.x guest.
        .args(["-accel", "tcg,thread=single"])
        .args(machine.arch.machine)
        .args([
            "-smp",
            &machine.cpus.to_string(),
            "-m",
            &format!("{}M", machine.memory_mib),
        ])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args([
            "-append",
            &format!("console={} quiet loglevel=1 panic=-1", machine.arch.console),
            "-display",
            "none",
            "-serial",
            "stdio",
            "-monitor",
            "none",
            "-no-reboot",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", machine.arch.qemu))?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > GUEST_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the guest did not power off within {GUEST_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        bail!("qemu failed ({status}): {}", err.trim());
    }
    Ok(console)
}
