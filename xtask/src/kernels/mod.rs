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

/// One kernel of the matrix: a label, the apt suite, the package that
/// depends on the newest image of that line, and the guest's architecture.
struct Kernel {
    label: &'static str,
    suite: &'static str,
    meta: &'static str,
    archive: &'static str,
    arch: &'static GuestArch,
}

/// What a guest of one architecture needs.
pub(crate) struct GuestArch {
    /// Debian's name (amd64, arm64): of the packages and of the binary.
    pub debian: &'static str,
    pub qemu: &'static str,
    /// QEMU's machine and CPU.
    pub machine: &'static [&'static str],
    /// The serial console's device in the guest.
    pub console: &'static str,
    /// The package that provides QEMU for it.
    pub qemu_package: &'static str,
}

pub(crate) const AMD64: GuestArch = GuestArch {
    debian: "amd64",
    qemu: "qemu-system-x86_64",
    machine: &[],
    console: "ttyS0",
    qemu_package: "qemu-system-x86",
};

pub(crate) const ARM64: GuestArch = GuestArch {
    debian: "arm64",
    qemu: "qemu-system-aarch64",
    machine: &["-M", "virt", "-cpu", "max"],
    console: "ttyAMA0",
    qemu_package: "qemu-system-arm",
};

const DEBIAN: &str = "http://deb.debian.org/debian";
const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";

const MATRIX: &[Kernel] = &[
    Kernel {
        label: "5.10",
        suite: "bullseye-security",
        meta: "linux-image-amd64",
        archive: DEBIAN_SECURITY,
        arch: &AMD64,
    },
    Kernel {
        label: "6.1",
        suite: "bookworm-security",
        meta: "linux-image-amd64",
        archive: DEBIAN_SECURITY,
        arch: &AMD64,
    },
    Kernel {
        label: "6.12",
        suite: "bookworm-security",
        meta: "linux-image-6.12-amd64",
        archive: DEBIAN_SECURITY,
        arch: &AMD64,
    },
    Kernel {
        label: "7.x",
        suite: "trixie-backports",
        meta: "linux-image-amd64",
        archive: DEBIAN,
        arch: &AMD64,
    },
    Kernel {
        label: "7.x arm64",
        suite: "trixie-backports",
        meta: "linux-image-arm64",
        archive: DEBIAN,
        arch: &ARM64,
    },
];

/// Boots each kernel of the matrix (those in `only`, if any) with the
/// static binary `tracer` builds for its architecture.
pub fn test_kernels(
    tracer: &dyn Fn(&GuestArch) -> anyhow::Result<PathBuf>,
    target: &Path,
    only: &[String],
) -> anyhow::Result<()> {
    let kernels: Vec<&Kernel> = MATRIX
        .iter()
        .filter(|k| only.is_empty() || only.iter().any(|o| o == k.label))
        .collect();
    if kernels.is_empty() {
        let labels: Vec<_> = MATRIX.iter().map(|k| k.label).collect();
        bail!("no such kernel in the matrix; it has {}", labels.join(", "));
    }
    let dir = target.join("kernels");
    let apt = Apt::new(&dir.join("apt"), &kernels)?;
    let mut initrds: Vec<(&str, PathBuf)> = Vec::new();
    let mut outcomes = Vec::new();
    for kernel in kernels {
        let arch = kernel.arch;
        if !initrds.iter().any(|(a, _)| *a == arch.debian) {
            ensure_host_tools(arch)?;
            let busybox = apt
                .busybox(&dir, arch.debian)
                .context("getting Debian's static busybox")?;
            let initrd = dir.join(format!("initrd-{}.cpio", arch.debian));
            initramfs::build_initramfs(&tracer(arch)?, &busybox, &initrd)?;
            initrds.push((arch.debian, initrd));
        }
        let initrd = &initrds
            .iter()
            .find(|(a, _)| *a == arch.debian)
            .context("no initramfs")?
            .1;
        let vmlinuz = apt
            .vmlinuz(kernel, &dir)
            .with_context(|| format!("getting Debian's {} kernel", kernel.label))?;
        eprintln!("xtask: booting {} ({})", kernel.label, vmlinuz.display());
        let started = Instant::now();
        let outcome = qemu::boot(kernel.label, &vmlinuz, initrd, &dir, arch);
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
    ensure_host_tools(kernel.arch)?;
    let dir = target.join("kernels");
    let apt = Apt::new(&dir.join("apt"), &[kernel])?;
    let busybox = apt
        .busybox(&dir, kernel.arch.debian)
        .context("getting Debian's static busybox")?;
    let vmlinuz = apt
        .vmlinuz(kernel, &dir)
        .with_context(|| format!("getting Debian's {label} kernel"))?;
    Ok((vmlinuz, busybox))
}

/// Installs QEMU for `arch` from Debian when missing.
fn ensure_host_tools(arch: &GuestArch) -> anyhow::Result<()> {
    if Path::new("/usr/bin").join(arch.qemu).exists() {
        return Ok(());
    }
    eprintln!("xtask: installing {} with apt-get", arch.qemu_package);
    crate::setup::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "-q", arch.qemu_package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing QEMU for the kernel matrix (needs root)")
}
