//! Builds the kernel programs (`tracer-ebpf`) for the BPF target and leaves the
//! object in `OUT_DIR`, from where `src/probe/object.rs` embeds it in the binary.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    // Build the kernel programs with the same toolchain as this crate (the one
    // `cargo xtask` pins and installs). rustup names it in RUSTUP_TOOLCHAIN.
    println!("cargo::rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").map_err(|_| {
        anyhow!("RUSTUP_TOOLCHAIN is not set: build through `cargo xtask build` (it pins and installs the toolchain)")
    })?;
    // `-Z build-std=core` is needed for the BPF target; allow it on a stable
    // toolchain for the nested eBPF build only (aya-build passes the variable on).
    // SAFETY: the build script is single-threaded at this point.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };

    git_commit();
    let metadata = cargo_metadata_root()?;
    let ebpf = Package {
        name: "tracer-ebpf",
        root_dir: &metadata,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::Custom(&toolchain))
        .context("building the kernel programs (needs bpf-linker on PATH; `cargo xtask build` installs it)")
}

/// Names the git commit in TRACER_GIT_COMMIT (for `tracer --version`): the
/// short hash of HEAD when built (uncommitted changes are not marked), or
/// `unknown` without git or outside a checkout.
fn git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=TRACER_GIT_COMMIT={commit}");
    // A new commit or checkout moves HEAD or the ref it names.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // Only paths that exist: cargo reruns every build for a missing one.
        for path in ["HEAD", "refs/heads", "packed-refs"] {
            let path = std::path::Path::new(&dir).join(path);
            if path.exists() {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }
}

/// Absolute path of the `tracer-ebpf` crate, for rerun-if-changed.
fn cargo_metadata_root() -> anyhow::Result<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    let path = std::path::Path::new(&dir).join("../tracer-ebpf");
    let path = path.canonicalize().with_context(|| format!("{}", path.display()))?;
    path.into_os_string()
        .into_string()
        .map_err(|p| anyhow!("non-UTF-8 path {}", p.display()))
}
