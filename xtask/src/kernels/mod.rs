//! `cargo xtask test-kernels`: boots each kernel of the matrix in QEMU and
//! runs `tracer check` inside it, with and without the kernel's BTF, and
//! checks `--cgroup` and `--per-process` there.
//!
//! Kernels are Debian's signed images, downloaded with apt as packages (not
//! installed) through a private apt state under target/kernels/apt, so the
//! machine's apt configuration is never touched; downloads are cached there.
//! The guest is an initramfs: Debian's static busybox (also downloaded, not
//! installed) as /init's shell, and the static tracer binary, with no
//! libraries (what runs there would run on any host). QEMU runs with TCG (software
//! emulation), single-threaded: no KVM needed, and stable on QEMU 7.2.
//!
//! One step per file: `apt` fetches the packages, `initramfs` writes the
//! guest (its /init is `init.sh`), `qemu` boots it and reads its console,
//! `verdict` judges what it reported, `report` writes the table and JSON.

mod apt;
pub(crate) mod initramfs;
pub(crate) mod qemu;
mod report;
mod verdict;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail};

use apt::Apt;

/// One kernel of the matrix: a label, the apt suite, and the package that
/// depends on the newest image of that line.
struct Kernel {
    label: &'static str,
    suite: &'static str,
    meta: &'static str,
    archive: &'static str,
}

const DEBIAN: &str = "http://deb.debian.org/debian";
const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";

const MATRIX: &[Kernel] = &[
    Kernel {
        label: "5.10",
        suite: "bullseye-security",
        meta: "linux-image-amd64",
        archive: DEBIAN_SECURITY,
    },
    Kernel {
        label: "6.1",
        suite: "bookworm-security",
        meta: "linux-image-amd64",
        archive: DEBIAN_SECURITY,
    },
    Kernel {
        label: "6.12",
        suite: "bookworm-security",
        meta: "linux-image-6.12-amd64",
        archive: DEBIAN_SECURITY,
    },
    Kernel {
        label: "7.x",
        suite: "trixie-backports",
        meta: "linux-image-amd64",
        archive: DEBIAN,
    },
];

pub fn test_kernels(tracer: &Path, target: &Path, only: &[String]) -> anyhow::Result<()> {
    let kernels: Vec<&Kernel> = MATRIX
        .iter()
        .filter(|k| only.is_empty() || only.iter().any(|o| o == k.label))
        .collect();
    if kernels.is_empty() {
        let labels: Vec<_> = MATRIX.iter().map(|k| k.label).collect();
        bail!("no such kernel in the matrix; it has {}", labels.join(", "));
    }
    ensure_host_tools()?;
    let dir = target.join("kernels");
    let apt = Apt::new(&dir.join("apt"), &kernels)?;
    let busybox = apt.busybox(&dir).context("getting Debian's static busybox")?;
    let initrd = dir.join("initrd.cpio");
    initramfs::build_initramfs(tracer, &busybox, &initrd)?;
    let mut outcomes = Vec::new();
    for kernel in kernels {
        let vmlinuz = apt
            .vmlinuz(kernel, &dir)
            .with_context(|| format!("getting Debian's {} kernel", kernel.label))?;
        eprintln!("xtask: booting {} ({})", kernel.label, vmlinuz.display());
        let started = Instant::now();
        let outcome = qemu::boot(kernel.label, &vmlinuz, &initrd, &dir);
        eprintln!(
            "xtask: {} {} in {:.0?}",
            kernel.label,
            if outcome.pass() { "passed" } else { "FAILED" },
            started.elapsed()
        );
        outcomes.push(outcome);
    }
    let md = report::table(&outcomes) + "\n" + &report::cgroup_lines(&outcomes);
    print!("{md}");
    fs::write(target.join("kernel-matrix.md"), &md)?;
    let json = report::matrix_json(&outcomes);
    fs::write(
        target.join("kernel-matrix.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    eprintln!(
        "xtask: wrote {} and kernel-matrix.json",
        target.join("kernel-matrix.md").display()
    );
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.pass()).map(|o| o.label).collect();
    if !failed.is_empty() {
        for o in outcomes.iter().filter(|o| !o.pass()) {
            report::explain_failure(o);
        }
        bail!("the tracer failed on kernel(s) {}", failed.join(", "));
    }
    Ok(())
}

/// The matrix's kernel `label` and Debian's static busybox, downloaded
/// (cached) under target/kernels, with QEMU installed: what a guest needs.
pub(crate) fn kernel_and_busybox(target: &Path, label: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let kernel = MATRIX
        .iter()
        .find(|k| k.label == label)
        .with_context(|| format!("no kernel {label} in the matrix"))?;
    ensure_host_tools()?;
    let dir = target.join("kernels");
    let apt = Apt::new(&dir.join("apt"), &[kernel])?;
    let busybox = apt.busybox(&dir).context("getting Debian's static busybox")?;
    let vmlinuz = apt
        .vmlinuz(kernel, &dir)
        .with_context(|| format!("getting Debian's {label} kernel"))?;
    Ok((vmlinuz, busybox))
}

/// Installs QEMU from Debian when missing.
fn ensure_host_tools() -> anyhow::Result<()> {
    if Path::new("/usr/bin/qemu-system-x86_64").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing qemu-system-x86 with apt-get");
    crate::setup::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "-q", "qemu-system-x86"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing QEMU for the kernel matrix (needs root)")
}
