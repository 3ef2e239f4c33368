//! `cargo xtask test-dist`: the x86_64 .deb in an old userland. A Debian 11
//! (bullseye, glibc 2.31) root made with debootstrap under target/dist-test
//! (kept between runs), the .deb installed in it with dpkg, `man tracer`
//! rendered there, and `tracer check` run inside it with the host's /proc,
//! /sys and /dev; and the tarballs' checksums checked.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::setup::run;

const SUITE: &str = "bullseye";
const MIRROR: &str = "http://deb.debian.org/debian";

/// Mounts inside the root, unmounted (recursively, lazily) when dropped.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-R").arg("-l").arg(m).status();
        }
    }
}

/// The bullseye root, made once.
fn root(target: &Path) -> anyhow::Result<PathBuf> {
    let root = target.join(format!("dist-test/{SUITE}"));
    if root.join("usr/bin/man").is_file() {
        return Ok(root);
    }
    if !Path::new("/usr/sbin/debootstrap").exists() {
        eprintln!("xtask: installing debootstrap with apt-get");
        run(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "-q", "debootstrap"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    eprintln!(
        "xtask: debootstrap {SUITE} into {} (a few minutes, once)",
        root.display()
    );
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "--include=man-db", SUITE])
        .arg(&root)
        .arg(MIRROR))
    .context("debootstrap of the old userland")?;
    Ok(root)
}

/// Runs `args` inside the root; returns stdout, failing with stderr.
fn chroot(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("chroot")
        .arg(root)
        .args(args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("MANPAGER", "cat")
        .output()
        .with_context(|| format!("chroot {args:?}"))?;
    if !out.status.success() {
        bail!(
            "`{}` in the {SUITE} root failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn test(target: &Path) -> anyhow::Result<()> {
    let dist = target.join("dist");
    for entry in fs::read_dir(&dist).with_context(|| format!("{}: run `cargo xtask dist` first", dist.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sha256") {
            run(Command::new("sha256sum")
                .arg("--check")
                .arg("--quiet")
                .arg(&path)
                .current_dir(&dist))?;
        }
    }
    let deb = fs::read_dir(&dist)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_amd64.deb"))
        .context("no amd64 .deb in target/dist")?;
    let root = root(target)?;
    let glibc = chroot(&root, &["/usr/bin/ldd", "--version"])?;
    let glibc = glibc.lines().next().unwrap_or("").to_owned();
    fs::copy(&deb, root.join("tmp/tracer.deb"))?;
    chroot(&root, &["dpkg", "-i", "/tmp/tracer.deb"])?;
    let man = chroot(&root, &["man", "tracer"])?;
    if !man.contains("per-process") && !man.contains("per\u{2010}process") {
        bail!("`man tracer` in the {SUITE} root does not show the options:\n{man}");
    }
    let mut mounts = Mounts(Vec::new());
    for (what, dir) in [("/proc", "proc"), ("/sys", "sys"), ("/dev", "dev")] {
        let at = root.join(dir);
        run(Command::new("mount").arg("--rbind").arg(what).arg(&at))?;
        mounts.0.push(at);
    }
    let check = chroot(&root, &["tracer", "check", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(check.trim()).context("tracer check's JSON")?;
    drop(mounts);
    if v["pass"] != true {
        bail!("tracer check in the {SUITE} root did not pass: {check}");
    }
    chroot(&root, &["dpkg", "-r", "tracer"])?;
    eprintln!(
        "xtask: the .deb installs, `man tracer` renders and `tracer check` passes in Debian {SUITE} ({glibc}); checksums match"
    );
    Ok(())
}
