//! Installs the pinned toolchain (with rust-src) and a bpf-linker built
//! against that toolchain's own LLVM, skipping whatever is already there.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

/// The toolchain that builds tracer and its kernel programs (aya 0.16 needs
/// rustc >= 1.98). Stable: the eBPF build gets `RUSTC_BOOTSTRAP=1` for
/// `-Z build-std=core` only (see tracer/build.rs).
pub const TOOLCHAIN: &str = "1.99.1";
const COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];
const BPF_LINKER_VERSION: &str = "0.13.0";
/// LLVM majors bpf-linker 0.13 has a feature for.
const BPF_LINKER_LLVMS: &[u32] = &[21, 22, 23];

/// What later commands need to build with the pinned setup.
pub struct Env {
    pub workspace: PathBuf,
    /// PATH with bpf-linker's directory first.
    pub path: OsString,
}

impl Env {
    /// `cargo +TOOLCHAIN <args>` in the workspace, with bpf-linker on PATH.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.arg(format!("+{TOOLCHAIN}"))
            .current_dir(&self.workspace)
            .env("PATH", &self.path)
            // Let the pinned toolchain's cargo pick its own rustc.
            .env_remove("RUSTC")
            .env_remove("RUSTDOC");
        cmd
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command, failing with its command line when it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn ensure() -> anyhow::Result<Env> {
    ensure_toolchain()?;
    let linker_dir = ensure_bpf_linker()?;
    let mut path = OsString::from(&linker_dir);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    Ok(Env {
        workspace: workspace(),
        path,
    })
}

fn ensure_toolchain() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", TOOLCHAIN]))
        .unwrap_or_default();
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .copied()
        .filter(|c| !installed.lines().any(|l| l.starts_with(&format!("{c}-")) || l == *c))
        .collect();
    if !installed.is_empty() && missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing toolchain {TOOLCHAIN} with {}", COMPONENTS.join(", "));
    run(Command::new("rustup").args([
        "toolchain",
        "install",
        TOOLCHAIN,
        "--profile",
        "minimal",
        "--component",
        &COMPONENTS.join(","),
    ]))
    .context("installing the pinned Rust toolchain (needs network access to static.rust-lang.org)")
}

/// Builds bpf-linker against the pinned toolchain's own libLLVM (so the LLVM
/// versions match by construction) into target/xtask-tools; returns its bin dir.
fn ensure_bpf_linker() -> anyhow::Result<PathBuf> {
    let sysroot = PathBuf::from(
        output(
            Command::new("rustc")
                .arg(format!("+{TOOLCHAIN}"))
                .args(["--print", "sysroot"]),
        )?
        .trim(),
    );
    let lib = sysroot.join("lib");
    let libllvm = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|n| n.starts_with("libLLVM-") && n.ends_with(".so"))
        .with_context(|| format!("no libLLVM-*.so in {}", lib.display()))?;
    let libname = libllvm.trim_start_matches("lib").trim_end_matches(".so").to_owned();
    let major: u32 = libname
        .trim_start_matches("LLVM-")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("cannot tell the LLVM version of {libllvm}"))?;
    if !BPF_LINKER_LLVMS.contains(&major) {
        bail!("toolchain {TOOLCHAIN} uses LLVM {major}, bpf-linker {BPF_LINKER_VERSION} supports {BPF_LINKER_LLVMS:?}");
    }

    let root = workspace()
        .join("target/xtask-tools")
        .join(format!("bpf-linker-{BPF_LINKER_VERSION}-rust-{TOOLCHAIN}"));
    let bin = root.join("bin");
    if bin.join("bpf-linker").is_file() {
        return Ok(bin);
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against {libname} (about a minute)");
    let rustflags = format!(
        "-L {lib} -l dylib={libname} -C link-arg=-Wl,-rpath,{lib}",
        lib = lib.display()
    );
    run(Command::new("cargo")
        .arg(format!("+{TOOLCHAIN}"))
        .args(["install", "bpf-linker", "--locked", "--version", BPF_LINKER_VERSION])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major},no-llvm-linking"),
        ])
        .arg("--root")
        .arg(&root)
        .env("RUSTFLAGS", rustflags)
        .env_remove("RUSTC"))
    .context("installing bpf-linker")?;
    Ok(bin)
}
