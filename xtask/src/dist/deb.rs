//! The .deb of each architecture, made by cargo-deb from the metadata in
//! tracer/Cargo.toml: the static binary, the man pages, the completions and
//! the example systemd unit.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use super::{Arch, PROFILE};
use crate::setup::{Env, TOOLCHAIN, run};

const CARGO_DEB_VERSION: &str = "3.6.4";

/// cargo-deb, installed once into target/xtask-tools.
fn cargo_deb(env: &Env) -> anyhow::Result<PathBuf> {
    let root = env
        .workspace
        .join(format!("target/xtask-tools/cargo-deb-{CARGO_DEB_VERSION}"));
    let bin = root.join("bin/cargo-deb");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!("xtask: installing cargo-deb {CARGO_DEB_VERSION} (about a minute, once)");
    run(Command::new("cargo")
        .arg(format!("+{TOOLCHAIN}"))
        .args([
            "install",
            "cargo-deb",
            "--locked",
            "--version",
            CARGO_DEB_VERSION,
            "--root",
        ])
        .arg(&root)
        .env_remove("RUSTC"))
    .context("installing cargo-deb")?;
    Ok(bin)
}

/// Builds the .deb for `arch` from its static binary (already built) and the
/// generated man pages and completions; returns its path in `out`.
pub fn package(env: &Env, arch: &Arch, generated: &Path, version: &str, out: &Path) -> anyhow::Result<PathBuf> {
    let cargo_deb = cargo_deb(env)?;
    // The assets name target/release/...: cargo-deb reads them from the
    // target's profile directory, where the binary is.
    let dest = env
        .workspace
        .join("target")
        .join(arch.triple)
        .join(PROFILE)
        .join("generated");
    let _ = fs::remove_dir_all(&dest);
    super::copy_generated(generated, &dest)?;
    // cargo-deb names it package_version-revision_arch.deb (revision 1).
    let deb = out.join(format!("tracer_{version}-1_{}.deb", arch.deb));
    let _ = fs::remove_file(&deb);
    run(Command::new(&cargo_deb)
        .current_dir(&env.workspace)
        .env("PATH", &env.path)
        .args([
            "--package",
            "tracer",
            "--no-build",
            "--no-strip",
            "--target",
            arch.triple,
            "--profile",
            PROFILE,
        ])
        .arg("--output")
        .arg(out))
    .with_context(|| format!("making the {} .deb", arch.deb))?;
    if !deb.is_file() {
        anyhow::bail!("cargo-deb wrote no {}", deb.display());
    }
    super::checksum(&deb)?;
    Ok(deb)
}
