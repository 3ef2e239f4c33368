//! The outputs for other tools, against the real thing: a Prometheus server
//! scraping the running tracer, HdrHistogram's own Java reader on the
//! interval log, and the SVG plot parsed and rendered to pixels.

mod hdr_log;
mod prometheus_server;
mod svg_plot;

use std::path::{Path, PathBuf};

use super::*;

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tracer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Installs a Debian package when `path` is missing (the tests run as root;
/// `cargo xtask test` installs them beforehand).
fn ensure_package(path: &str, package: &str) {
    if Path::new(path).exists() {
        return;
    }
    eprintln!("installing {package} for {path}");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(install(), "cannot install {package}");
    }
    assert!(Path::new(path).exists(), "{package} did not install {path}");
    // Where systemd would start the package's service, stop it: the tests run
    // their own Prometheus, and nothing they install may outlive them.
    if package == "prometheus" && Path::new("/run/systemd/system").exists() {
        let _ = Command::new("systemctl")
            .args(["disable", "--now", "prometheus.service"])
            .status();
    }
}
