//! `cargo xtask dist`: static binaries (musl) for x86_64 and aarch64 with
//! the kernel programs embedded, each as a tarball with its sha256, and a
//! .deb per architecture, in target/dist/.

mod deb;
pub mod userland;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::setup::{Env, TOOLCHAIN, run};

/// One architecture: (name in file names, Rust target, Debian architecture).
pub struct Arch {
    pub name: &'static str,
    pub triple: &'static str,
    pub deb: &'static str,
}

pub const ARCHES: [Arch; 2] = [
    Arch {
        name: "x86_64",
        triple: "x86_64-unknown-linux-musl",
        deb: "amd64",
    },
    Arch {
        name: "aarch64",
        triple: "aarch64-unknown-linux-musl",
        deb: "arm64",
    },
];

/// This machine's architecture.
pub fn host_arch() -> anyhow::Result<&'static Arch> {
    ARCHES
        .iter()
        .find(|a| a.name == std::env::consts::ARCH)
        .with_context(|| format!("no static build for {}", std::env::consts::ARCH))
}

/// The static binary for a guest of `arch`, built.
pub fn build_for(env: &Env, arch: &crate::kernels::GuestArch) -> anyhow::Result<PathBuf> {
    let arch = ARCHES
        .iter()
        .find(|a| a.deb == arch.debian)
        .with_context(|| format!("no static build for {}", arch.debian))?;
    build_static(env, arch)
}

/// The cargo profile of the static builds: release, stripped.
pub const PROFILE: &str = "release-static";

/// Builds the static binary for `arch` (installing the Rust target first);
/// returns its path.
pub fn build_static(env: &Env, arch: &Arch) -> anyhow::Result<PathBuf> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed", "--toolchain", TOOLCHAIN])
        .output()
        .context("running rustup")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l == arch.triple)
    {
        eprintln!("xtask: installing the Rust target {} for {TOOLCHAIN}", arch.triple);
        run(Command::new("rustup").args(["target", "add", arch.triple, "--toolchain", TOOLCHAIN]))?;
    }
    let mut cargo = env.cargo();
    cargo.args([
        "build",
        "--package",
        "tracer",
        "--profile",
        PROFILE,
        "--target",
        arch.triple,
    ]);
    // musl targets link self-contained (musl's crt and libc ship with the
    // target); for another architecture the linker is LLVM's, which rustup
    // ships too.
    if arch.name != std::env::consts::ARCH {
        let var = format!("CARGO_TARGET_{}_LINKER", arch.triple.to_uppercase().replace('-', "_"));
        cargo.env(var, "rust-lld");
    }
    run(&mut cargo).with_context(|| format!("building the static {} binary", arch.name))?;
    let binary = env
        .workspace
        .join("target")
        .join(arch.triple)
        .join(PROFILE)
        .join("tracer");
    if !crate::kernels::initramfs::is_static(&binary)? {
        bail!("{} is not static: it has an ELF interpreter", binary.display());
    }
    Ok(binary)
}

/// The crate version, from `tracer --version` of the host's static build.
fn version(binary: &Path) -> anyhow::Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .context("running tracer --version")?;
    let line = String::from_utf8_lossy(&out.stdout);
    line.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .with_context(|| format!("unexpected `tracer --version`: {line}"))
}

/// Writes `tracer-<version>-<arch>-linux.tar.gz` and its `.sha256` into
/// `out`: the binary, the man pages, the completions, the systemd unit and
/// the README, under a directory of the same name.
fn tarball(
    env: &Env,
    arch: &Arch,
    binary: &Path,
    generated: &Path,
    version: &str,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let name = format!("tracer-{version}-{}-linux", arch.name);
    let stage = out.join("stage").join(&name);
    let _ = fs::remove_dir_all(&stage);
    fs::create_dir_all(&stage)?;
    fs::copy(binary, stage.join("tracer"))?;
    copy_generated(generated, &stage)?;
    fs::copy(
        env.workspace.join("contrib/tracer-exporter.service"),
        stage.join("tracer-exporter.service"),
    )?;
    fs::copy(env.workspace.join("README.md"), stage.join("README.md"))?;
    let tarball = out.join(format!("{name}.tar.gz"));
    run(Command::new("tar")
        .arg("-C")
        .arg(out.join("stage"))
        .args(["--owner=0", "--group=0", "-czf"])
        .arg(&tarball)
        .arg(&name))?;
    checksum(&tarball)?;
    fs::remove_dir_all(out.join("stage"))?;
    Ok(tarball)
}

/// Copies the generated man/ and completions/ from `generated` into `to`.
fn copy_generated(generated: &Path, to: &Path) -> anyhow::Result<()> {
    for dir in ["man", "completions"] {
        fs::create_dir_all(to.join(dir))?;
        for entry in fs::read_dir(generated.join(dir))? {
            let entry = entry?;
            fs::copy(entry.path(), to.join(dir).join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Writes FILE.sha256 in `sha256sum` format, so `sha256sum -c` checks it.
pub fn checksum(file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().context("a file without a directory")?;
    let name = file.file_name().context("a file without a name")?;
    let out = Command::new("sha256sum")
        .arg(name)
        .current_dir(dir)
        .output()
        .context("running sha256sum")?;
    if !out.status.success() {
        bail!("sha256sum failed on {}", file.display());
    }
    let mut sum = file.as_os_str().to_owned();
    sum.push(".sha256");
    fs::write(sum, out.stdout)?;
    Ok(())
}

pub fn dist(env: &Env) -> anyhow::Result<()> {
    let out = env.workspace.join("target/dist");
    fs::create_dir_all(&out)?;
    let binaries = ARCHES
        .iter()
        .map(|arch| build_static(env, arch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let host = ARCHES
        .iter()
        .position(|a| a.name == std::env::consts::ARCH)
        .context("no build for this host's architecture")?;
    let version = version(&binaries[host])?;
    // Man pages and completions come from the command-line definitions:
    // the same for every architecture, generated by the host's binary.
    let generated = env.workspace.join("target/dist-generated");
    let _ = fs::remove_dir_all(&generated);
    run(Command::new(&binaries[host])
        .arg("generate")
        .arg(&generated)
        .stdout(std::process::Stdio::null()))?;
    for (arch, binary) in ARCHES.iter().zip(&binaries) {
        let tarball = tarball(env, arch, binary, &generated, &version, &out)?;
        let deb = deb::package(env, arch, &generated, &version, &out)?;
        let size = fs::metadata(binary)?.len();
        eprintln!(
            "xtask: {}: binary {:.1} MiB, {}, {}",
            arch.name,
            size as f64 / (1 << 20) as f64,
            tarball.display(),
            deb.display()
        );
    }
    Ok(())
}
