//! `cargo xtask test-kernels`: boots each kernel of the matrix in QEMU and
//! runs `tracer check` inside it, with and without the kernel's BTF, and
//! checks `--cgroup` and `--per-process` there.
//!
//! Kernels are Debian's signed images, downloaded with apt as packages (not
//! installed) through a private apt state under target/kernels/apt, so the
//! machine's apt configuration is never touched; downloads are cached there.
//! The guest is an initramfs: Debian's static busybox (also downloaded, not
//! installed) as /init's shell, the tracer
//! binary and the shared libraries it links. QEMU runs with TCG (software
//! emulation), single-threaded: no KVM needed, and stable on QEMU 7.2.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

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
/// Where the guest's static busybox comes from.
const BUSYBOX_SUITE: (&str, &str) = (DEBIAN, "bookworm");

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

/// Round trips of each ping-pong in the guest: under emulation a switch
/// takes 10-100 us, so this keeps a kernel's run under a minute. Fewer make
/// the time a workload's threads spend outside their measured loop (start,
/// exit: slow under emulation) weigh more against the 3 % margins: at 5,000
/// a 7.x guest once had its run-queue total 3.6 % over schedstat's.
const GUEST_ROUND_TRIPS: u64 = 10_000;
/// Round trips of each process ping-pong of the `--cgroup` check.
const CGROUP_ROUND_TRIPS: u64 = 2_000;
/// Short-lived processes of the `--per-process` check (its report, one line
/// on the serial console, has a row for each).
const PER_PROCESS_CHILDREN: u64 = 50;
/// A guest that has not powered off by then is killed and fails.
const GUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// What one guest reported.
struct Outcome {
    label: &'static str,
    release: String,
    /// `tracer check --json` with the kernel's BTF, and without it.
    with_btf: Option<Value>,
    without_btf: Option<Value>,
    /// The first line tracer printed when tracing without BTF.
    no_btf_message: Option<String>,
    /// `--cgroup`: the process switches in its interval reports, and the
    /// kernel's counts of the ping-pong inside the cgroup and of the one
    /// outside.
    cgroup: (Option<u64>, Option<Value>, Option<Value>),
    /// `--per-process` on a churn of short-lived processes: the JSON lines
    /// (the churn's counts and the report) with the kernel's BTF (tp_btf)
    /// and without it (tracepoint).
    per_process: [Vec<Value>; 2],
    /// Why the guest run itself failed (no output, timeout).
    error: Option<String>,
}

impl Outcome {
    /// `--cgroup`: process switches in its reports, and the kernel's counts
    /// of the ping-pong inside and of the one outside (0 where missing);
    /// `None` when the reports are missing.
    fn cgroup_counts(&self) -> Option<(u64, u64, u64)> {
        let switches = |v: &Option<Value>| v.as_ref().and_then(|v| v["switches"].as_u64()).unwrap_or(0);
        Some((self.cgroup.0?, switches(&self.cgroup.1), switches(&self.cgroup.2)))
    }

    /// Tracing without BTF said why and that it fell back.
    fn told_no_btf(&self) -> bool {
        self.no_btf_message
            .as_deref()
            .is_some_and(|m| m.contains("exposes no BTF") && m.contains("classic tracepoint"))
    }

    /// `--cgroup` kept the ping-pong inside and left the one outside out:
    /// the reports' process switches are >= 99 % of the inner one's and at
    /// most 1 % + 200 more (less than the outer one's would add). The
    /// problem, if any.
    fn cgroup_problem(&self) -> Option<String> {
        let (Some((seen, inside, outside)), Some(_), Some(_)) = (self.cgroup_counts(), &self.cgroup.1, &self.cgroup.2)
        else {
            return Some("no result".into());
        };
        let (lo, hi) = (0.99 * inside as f64, 1.01 * inside as f64 + 200.0);
        if inside == 0 || outside == 0 {
            Some(format!(
                "a ping-pong did not run (inside {inside}, outside {outside} switches)"
            ))
        } else if (seen as f64) < lo || (seen as f64) > hi {
            Some(format!(
                "--cgroup counted {seen} process switches; the ping-pong inside made {inside}, the one outside {outside}"
            ))
        } else {
            None
        }
    }

    fn pass(&self) -> bool {
        let passed = |v: &Option<Value>| v.as_ref().is_some_and(|v| v["pass"] == Value::Bool(true));
        self.error.is_none()
            && self.cgroup_problem().is_none()
            && self.per_process.iter().all(|lines| per_process_result(lines).is_ok())
            && passed(&self.with_btf)
            && passed(&self.without_btf)
            && self.told_no_btf()
    }
}

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
    build_initramfs(tracer, &busybox, &initrd)?;
    let mut outcomes = Vec::new();
    for kernel in kernels {
        let vmlinuz = apt
            .vmlinuz(kernel, &dir)
            .with_context(|| format!("getting Debian's {} kernel", kernel.label))?;
        eprintln!("xtask: booting {} ({})", kernel.label, vmlinuz.display());
        let started = Instant::now();
        let outcome = boot(kernel.label, &vmlinuz, &initrd, &dir);
        eprintln!(
            "xtask: {} {} in {:.0?}",
            kernel.label,
            if outcome.pass() { "passed" } else { "FAILED" },
            started.elapsed()
        );
        outcomes.push(outcome);
    }
    let md = table(&outcomes) + "\n" + &cgroup_lines(&outcomes);
    print!("{md}");
    fs::write(target.join("kernel-matrix.md"), &md)?;
    let json: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "kernel": o.label,
                "release": o.release,
                "pass": o.pass(),
                "error": o.error,
                "with_btf": o.with_btf,
                "without_btf": o.without_btf,
                "no_btf_message": o.no_btf_message,
                "cgroup": {
                    "process_switches": o.cgroup.0,
                    "inside": o.cgroup.1,
                    "outside": o.cgroup.2,
                    "problem": o.cgroup_problem(),
                },
                "per_process": per_process_json(o),
            })
        })
        .collect();
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
            explain_failure(o);
        }
        bail!("the tracer failed on kernel(s) {}", failed.join(", "));
    }
    Ok(())
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

/// apt-get with its own sources, lists and cache: nothing of the machine's
/// apt configuration is read or changed.
struct Apt {
    root: PathBuf,
}

impl Apt {
    fn new(root: &Path, kernels: &[&Kernel]) -> anyhow::Result<Self> {
        for sub in ["lists/partial", "cache/archives/partial", "debs"] {
            fs::create_dir_all(root.join(sub))?;
        }
        let mut sources = String::new();
        let mut suites: BTreeSet<(&str, &str)> = kernels.iter().map(|k| (k.archive, k.suite)).collect();
        // The guest's static busybox.
        suites.insert(BUSYBOX_SUITE);
        for (archive, suite) in suites {
            let _ = writeln!(
                sources,
                "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {archive} {suite} main"
            );
        }
        fs::write(root.join("sources.list"), sources)?;
        // The one status file apt must not read is the machine's.
        fs::write(root.join("status"), "")?;
        let apt = Self { root: root.to_owned() };
        crate::setup::run(apt.command("apt-get").args(["-q", "update"]))
            .context("apt-get update with the matrix's own sources")?;
        Ok(apt)
    }

    fn command(&self, program: &str) -> Command {
        let r = self.root.display();
        let mut cmd = Command::new(program);
        cmd.args([
            "-o".to_owned(),
            format!("Dir::State={r}"),
            "-o".to_owned(),
            format!("Dir::State::Lists={r}/lists"),
            "-o".to_owned(),
            format!("Dir::State::status={r}/status"),
            "-o".to_owned(),
            format!("Dir::Cache={r}/cache"),
            "-o".to_owned(),
            format!("Dir::Etc::SourceList={r}/sources.list"),
            "-o".to_owned(),
            "Dir::Etc::SourceParts=/dev/null".to_owned(),
            "-o".to_owned(),
            "Dir::Etc::Preferences=/dev/null".to_owned(),
            "-o".to_owned(),
            "Dir::Etc::PreferencesParts=/dev/null".to_owned(),
            // Root downloads into our own directory; apt's sandbox user could not.
            "-o".to_owned(),
            "APT::Sandbox::User=root".to_owned(),
        ]);
        cmd.current_dir(self.root.join("debs"));
        cmd
    }

    /// Downloads `package` (`name` or `name/suite`) unless a .deb of that
    /// name is already here; returns its path.
    fn download(&self, package: &str, version: Option<&str>) -> anyhow::Result<PathBuf> {
        let name = package.split('/').next().unwrap_or(package);
        let debs = self.root.join("debs");
        let find = |version: Option<&str>| -> Option<PathBuf> {
            let prefix = format!("{name}_");
            fs::read_dir(&debs)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
                    file.starts_with(&prefix)
                        && file.ends_with(".deb")
                        && version.is_none_or(|v| file.contains(&format!("_{}_", v.replace(':', "%3a"))))
                })
        };
        // A meta package resolves to a new version when the suite moves on:
        // always ask apt for it (small); image packages are cached by version.
        if let Some(v) = version
            && let Some(cached) = find(Some(v))
        {
            return Ok(cached);
        }
        let spec = match version {
            Some(v) => format!("{name}={v}"),
            None => package.to_owned(),
        };
        if version.is_none() {
            // Replace a meta package's older download.
            if let Some(old) = find(None) {
                let _ = fs::remove_file(old);
            }
        }
        crate::setup::run(self.command("apt-get").args(["-q", "download", &spec]))
            .with_context(|| format!("downloading {spec}"))?;
        find(version).with_context(|| format!("apt-get download {spec} left no .deb"))
    }

    /// Debian's static busybox, extracted to `dir/busybox`.
    fn busybox(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let deb = self.download(&format!("busybox-static/{}", BUSYBOX_SUITE.1), None)?;
        let tree = dir.join("busybox-tree");
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(&tree)?;
        crate::setup::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        let found = ["bin/busybox", "usr/bin/busybox"]
            .iter()
            .map(|p| tree.join(p))
            .find(|p| p.is_file())
            .with_context(|| format!("no bin/busybox in {}", deb.display()))?;
        let busybox = dir.join("busybox");
        fs::rename(found, &busybox)?;
        fs::remove_dir_all(&tree)?;
        Ok(busybox)
    }

    /// The kernel image of `kernel`, extracted under `dir`.
    fn vmlinuz(&self, kernel: &Kernel, dir: &Path) -> anyhow::Result<PathBuf> {
        let meta = self.download(&format!("{}/{}", kernel.meta, kernel.suite), None)?;
        let depends = deb_field(&meta, "Depends")?;
        let (image, version) = depends_on(&depends, "linux-image-")
            .with_context(|| format!("{} depends on no linux-image package: {depends}", meta.display()))?;
        let abi = image.trim_start_matches("linux-image-");
        let out = dir.join(abi);
        let vmlinuz = out.join("vmlinuz");
        if vmlinuz.exists() {
            return Ok(vmlinuz);
        }
        let deb = self.download(&image, Some(&version))?;
        let mut found = extract_vmlinuz(&deb, &out)?;
        if found.is_none() {
            // Since 7.x the image package only depends on linux-binary-ABI,
            // which has the kernel (and linux-base-ABI the config).
            let image_depends = deb_field(&deb, "Depends")?;
            let (binary, version) = depends_on(&image_depends, "linux-binary-")
                .with_context(|| format!("{} has no vmlinuz and no linux-binary dependency", deb.display()))?;
            let deb = self.download(&binary, Some(&version))?;
            found = extract_vmlinuz(&deb, &out)?;
        }
        let found = found.with_context(|| format!("no vmlinuz in Debian's packages of {abi}"))?;
        fs::rename(&found, &vmlinuz)?;
        Ok(vmlinuz)
    }
}

/// A control field of a .deb.
fn deb_field(deb: &Path, field: &str) -> anyhow::Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(field)
        .output()
        .context("running dpkg-deb")?;
    if !out.status.success() {
        bail!("dpkg-deb --field {} {field} failed", deb.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The first dependency named `prefix...` with an exact version:
/// `linux-image-6.1.0-56-amd64 (= 6.1.192-2)` -> (name, version).
fn depends_on(depends: &str, prefix: &str) -> Option<(String, String)> {
    depends.split(',').find_map(|dep| {
        let dep = dep.trim();
        let (name, rest) = dep.split_once(' ')?;
        let version = rest.trim().strip_prefix("(=")?.strip_suffix(')')?.trim();
        name.starts_with(prefix).then(|| (name.to_owned(), version.to_owned()))
    })
}

/// Unpacks `deb` into `out` and returns the kernel image in it, if any.
fn extract_vmlinuz(deb: &Path, out: &Path) -> anyhow::Result<Option<PathBuf>> {
    let tree = out.join("tree");
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(&tree)?;
    crate::setup::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree))?;
    let found = find_file(&tree, &|name| name == "vmlinuz" || name.starts_with("vmlinuz-"));
    let result = match found {
        Some(path) => {
            let kept = out.join("vmlinuz.tmp");
            fs::rename(&path, &kept)?;
            Some(kept)
        }
        None => None,
    };
    fs::remove_dir_all(&tree)?;
    Ok(result)
}

fn find_file(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let file_type = entry.file_type().ok()?;
        if file_type.is_dir() {
            if let Some(found) = find_file(&path, wanted) {
                return Some(found);
            }
        } else if file_type.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(wanted) {
            return Some(path);
        }
    }
    None
}

/// `--per-process` on a churn of short-lived processes (exited, so retired
/// from the kernel's table through the ring buffer the free program fills):
/// every child is in the report, no count was dropped, and the children's
/// switches out match the kernel's count, with one of slack per child.
/// (children, their switches out, the kernel's count), or the problem.
fn per_process_result(lines: &[Value]) -> Result<(usize, u64, u64), String> {
    let truth = lines
        .iter()
        .find(|v| v.get("children").is_some())
        .ok_or("no churn result")?;
    let report = lines.iter().find(|v| v.get("processes").is_some()).ok_or("no report")?;
    let procs = report["processes"].as_array().cloned().unwrap_or_default();
    let children: Vec<u64> = truth["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let kernel = truth["children_switches"].as_u64().unwrap_or(0);
    let (mut out, mut missing) = (0, 0);
    for &child in &children {
        match procs.iter().find(|p| p["tgid"].as_u64() == Some(child)) {
            Some(p) => {
                out += ["thread", "process", "kernel", "idle"]
                    .iter()
                    .filter_map(|c| p["out"][c].as_u64())
                    .sum::<u64>();
            }
            None => missing += 1,
        }
    }
    let n = children.len();
    if n == 0 || missing > 0 {
        return Err(format!("{missing} of {n} exited processes missing from the report"));
    }
    if report["processes_dropped"].as_u64() != Some(0) {
        return Err(format!("processes_dropped {}", report["processes_dropped"]));
    }
    if out < kernel || out > kernel + n as u64 {
        return Err(format!("their switches out {out}, the kernel's count {kernel}"));
    }
    Ok((n, out, kernel))
}

/// `per_process_result` of each probe, for kernel-matrix.json.
fn per_process_json(o: &Outcome) -> Vec<Value> {
    ["tp_btf", "tracepoint"]
        .iter()
        .zip(&o.per_process)
        .map(|(probe, lines)| {
            let result = per_process_result(lines);
            serde_json::json!({
                "probe": probe,
                "exited": result.as_ref().ok().map(|r| r.0),
                "switches_out": result.as_ref().ok().map(|r| r.1),
                "kernel": result.as_ref().ok().map(|r| r.2),
                "problem": result.err(),
            })
        })
        .collect()
}

/// The guest's /init: mounts what tracer needs, runs the checks, prints each
/// result on one line after a marker, powers off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "@@release $(uname -r)"
/tracer check --json --round-trips ROUND_TRIPS >/tmp/out 2>/tmp/err
echo "@@with-btf $(cat /tmp/out)"
echo "@@with-btf-stderr $(head -c 2000 /tmp/err | tr '\n' ' ')"
# --cgroup: a process ping-pong in a child of the cgroup named is kept, the
# same ping-pong outside it is left out (cgroup v2 ancestors: the layout
# changed in 5.18).
mkdir -p /sys/fs/cgroup
mount -t cgroup2 none /sys/fs/cgroup
mkdir -p /sys/fs/cgroup/traced/sub
# One JSON line per second: the first one says tracing has started.
/tracer --cgroup /sys/fs/cgroup/traced --json -i 1s >/tmp/cg 2>/tmp/cg-err &
tracer_pid=$!
i=0
while [ ! -s /tmp/cg ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sh -c 'echo $$ > /sys/fs/cgroup/traced/sub/cgroup.procs; exec /tracer ping-pong --kind processes --round-trips CGROUP_ROUND_TRIPS --cpu 1' >/tmp/in
/tracer ping-pong --kind processes --round-trips CGROUP_ROUND_TRIPS --cpu 1 >/tmp/out
kill -INT $tracer_pid
wait $tracer_pid
while read -r line; do echo "@@cgroup-report $line"; done </tmp/cg
echo "@@cgroup-stderr $(head -c 2000 /tmp/cg-err | tr '\n' ' ')"
echo "@@cgroup-in $(cat /tmp/in)"
echo "@@cgroup-out $(cat /tmp/out)"
# --per-process: short-lived processes, retired from the kernel's table when
# freed, are all in the report (tp_btf here, the tracepoint probe below).
/tracer --per-process -m none --json --top 1000 -- /tracer churn --threads 0 --processes PER_PROCESS_CHILDREN >/tmp/pp 2>/tmp/pp-err
while read -r line; do echo "@@per-process-btf $line"; done </tmp/pp
echo "@@per-process-btf-stderr $(head -c 2000 /tmp/pp-err | tr '\n' ' ')"
# No BTF: hide it, as on a kernel built without CONFIG_DEBUG_INFO_BTF.
mount -t tmpfs none /sys/kernel/btf
/tracer -d 1s --json >/tmp/out 2>/tmp/err
echo "@@no-btf-message $(head -n 1 /tmp/err)"
/tracer --per-process -m none --json --top 1000 -- /tracer churn --threads 0 --processes PER_PROCESS_CHILDREN >/tmp/pp 2>/tmp/pp-err
while read -r line; do echo "@@per-process-no-btf $line"; done </tmp/pp
echo "@@per-process-no-btf-stderr $(head -c 2000 /tmp/pp-err | tr '\n' ' ')"
/tracer check --json --round-trips ROUND_TRIPS >/tmp/out 2>/tmp/err
echo "@@without-btf $(cat /tmp/out)"
echo "@@without-btf-stderr $(head -c 2000 /tmp/err | tr '\n' ' ')"
echo "@@done"
reboot -f
"#;

/// Writes the guest's initramfs (a newc cpio archive).
fn build_initramfs(tracer: &Path, busybox: &Path, out: &Path) -> anyhow::Result<()> {
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib64", "usr", "usr/lib"] {
        cpio.dir(dir);
    }
    cpio.file(
        "init",
        INIT.replace("CGROUP_ROUND_TRIPS", &CGROUP_ROUND_TRIPS.to_string())
            .replace("PER_PROCESS_CHILDREN", &PER_PROCESS_CHILDREN.to_string())
            .replace("ROUND_TRIPS", &GUEST_ROUND_TRIPS.to_string())
            .as_bytes(),
        0o755,
    );
    cpio.file("bin/busybox", &fs::read(busybox)?, 0o755);
    cpio.file("tracer", &fs::read(tracer)?, 0o755);
    for lib in shared_libraries(tracer)? {
        let inside = lib.to_string_lossy().trim_start_matches('/').to_owned();
        let mut parent = Path::new(&inside).parent();
        let mut dirs = Vec::new();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
        for d in dirs.iter().rev() {
            cpio.dir(d);
        }
        cpio.file(&inside, &fs::read(&lib)?, 0o755);
    }
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(out, cpio.finish())?;
    Ok(())
}

/// The shared libraries and loader `binary` needs, from ldd, resolved.
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(binary).output().context("running ldd")?;
    if !out.status.success() {
        bail!("ldd {} failed", binary.display());
    }
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// A newc ("070701") cpio archive, as the kernel unpacks into its rootfs.
#[derive(Default)]
struct Cpio {
    data: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn dir(&mut self, path: &str) {
        if self.dirs.insert(path.to_owned()) {
            self.entry(path, 0o040_755, &[]);
        }
    }

    fn file(&mut self, path: &str, contents: &[u8], mode: u32) {
        self.entry(path, 0o100_000 | mode, contents);
    }

    fn entry(&mut self, name: &str, mode: u32, contents: &[u8]) {
        self.ino += 1;
        let name_len = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0,                                         // uid
            0,                                         // gid
            if mode & 0o040_000 != 0 { 2 } else { 1 }, // nlink
            0,                                         // mtime
            contents.len() as u32,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            name_len as u32,
            0, // check
        ];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            let _ = write!(self.data, "{f:08x}");
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(contents);
        self.pad();
    }

    fn pad(&mut self) {
        while self.data.len() % 4 != 0 {
            self.data.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.data
    }
}

/// Boots one kernel and collects what the guest printed.
fn boot(label: &'static str, vmlinuz: &Path, initrd: &Path, dir: &Path) -> Outcome {
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
    let log_path = dir.join(format!("console-{label}.log"));
    let console = match run_qemu(vmlinuz, initrd) {
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

/// Runs QEMU until the guest powers off; returns its serial console.
fn run_qemu(vmlinuz: &Path, initrd: &Path) -> anyhow::Result<String> {
    let mut child = Command::new("qemu-system-x86_64")
        // Software emulation, one host thread: KVM here is nested and cannot
        // boot stock kernels, and multi-threaded TCG in QEMU 7.2 has crashed
        // a 7.x guest.
        .args(["-accel", "tcg,thread=single", "-smp", "2", "-m", "1G"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args([
            "-append",
            "console=ttyS0 quiet loglevel=1 panic=-1",
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
        .context("starting qemu-system-x86_64")?;
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

/// The result table, in Markdown: per kernel, each probe with BTF, then the
/// run with BTF hidden (where tp_btf must say why it cannot load and the
/// tracepoint probe must take over).
fn table(outcomes: &[Outcome]) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| kernel | release | BTF (task_struct.tgid at byte) | probe | measures | cannot measure | result |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let short = |m: &str| m.trim_end_matches("_ns").trim_end_matches("_latency").to_owned();
    for o in outcomes {
        if let Some(e) = &o.error {
            let _ = writeln!(md, "| {} | {} | | | | | FAIL: {e} |", o.label, o.release);
            continue;
        }
        for (btf, check) in [("yes", &o.with_btf), ("hidden", &o.without_btf)] {
            let Some(check) = check else { continue };
            let btf = match check["task_offsets"]["tgid"].as_u64() {
                Some(tgid) => format!("{btf} ({tgid})"),
                None => btf.to_owned(),
            };
            for p in check["probes"].as_array().into_iter().flatten() {
                let probe = p["probe"].as_str().unwrap_or("?");
                if p["unavailable"].is_string() {
                    // Said in the tracepoint row below.
                    continue;
                }
                let (measures, missing, result) = if let Some(e) = p["error"].as_str() {
                    (String::new(), String::new(), format!("FAIL: {e}"))
                } else {
                    let mut metrics: Vec<String> = p["metrics"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(short)
                        .collect();
                    metrics.insert(0, "counts".into());
                    if let Some(t) = p["task_times"].as_str().filter(|t| *t != "task_storage") {
                        metrics.push(format!("(per-task times in {})", t.replace('_', " ")));
                    }
                    let missing: Vec<String> = p["missing"]
                        .as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(|m| short(m))
                        .collect();
                    let mut result = if p["pass"] == Value::Bool(true) {
                        "pass".to_owned()
                    } else {
                        format!("FAIL: {}", failures(p).join("; "))
                    };
                    if btf.starts_with("hidden") {
                        result += if o.told_no_btf() {
                            "; without BTF tracer says so and falls back to it"
                        } else {
                            "; FAIL: tracing without BTF did not say why it fell back"
                        };
                    }
                    (metrics.join(", "), missing.join(", "), result)
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {btf} | {probe} | {measures} | {missing} | {result} |",
                    o.label, o.release,
                );
            }
        }
    }
    md
}

/// The `--cgroup` line under the table.
fn cgroup_lines(outcomes: &[Outcome]) -> String {
    let mut md = String::new();
    for o in outcomes.iter().filter(|o| o.error.is_none()) {
        let (seen, inside, outside) = o.cgroup_counts().unwrap_or_default();
        let _ = writeln!(
            md,
            "- {}: `--cgroup` counted {seen} process switches for a ping-pong of {inside} inside (one outside made {outside}): {}",
            o.label,
            o.cgroup_problem()
                .map_or_else(|| "pass".to_owned(), |p| format!("FAIL: {p}"))
        );
        for (probe, lines) in ["tp_btf", "tracepoint"].iter().zip(&o.per_process) {
            let line = match per_process_result(lines) {
                Ok((n, out, kernel)) => {
                    format!("reported all {n} exited processes, {out} switches out for the kernel's {kernel}: pass")
                }
                Err(p) => format!("FAIL: {p}"),
            };
            let _ = writeln!(md, "- {}: `--per-process` ({probe}) {line}", o.label);
        }
    }
    md
}

/// The failed comparisons of one probe's check, one line each.
fn failures(probe: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for w in probe["workloads"].as_array().into_iter().flatten() {
        for i in w["items"].as_array().into_iter().flatten() {
            if i["pass"] != Value::Bool(true) {
                out.push(format!(
                    "{} {}: tracer {} kernel {} (allowed {})",
                    w["workload"].as_str().unwrap_or("?"),
                    i["name"].as_str().unwrap_or("?"),
                    i["tracer"],
                    i["kernel"],
                    i["allowed"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    out
}

fn explain_failure(o: &Outcome) {
    eprintln!("xtask: kernel {} ({}) failed:", o.label, o.release);
    if let Some(e) = &o.error {
        eprintln!("  {e}");
    }
    if let Some(p) = o.cgroup_problem() {
        eprintln!("  --cgroup: {p}");
    }
    for check in [&o.with_btf, &o.without_btf].into_iter().flatten() {
        for p in check["probes"].as_array().into_iter().flatten() {
            if let Some(e) = p["error"].as_str() {
                eprintln!("  {}: {e}", p["probe"]);
            }
            for f in failures(p) {
                eprintln!("  {}: {f}", p["probe"]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_dependencies() {
        let d = "linux-base-amd64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-amd64 (= 7.3.4-1~bpo13+1)";
        assert_eq!(
            depends_on(d, "linux-image-"),
            Some(("linux-image-7.3.4+deb13-amd64".into(), "7.3.4-1~bpo13+1".into()))
        );
        assert_eq!(depends_on("linux-image-5.10.0-46-amd64 (>= 5)", "linux-image-"), None);
        assert_eq!(depends_on("", "linux-image-"), None);
    }

    #[test]
    fn cpio_is_newc() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("init", b"#!/bin/sh\n", 0o755);
        let data = c.finish();
        assert!(data.starts_with(b"070701"));
        assert_eq!(data.len() % 4, 0);
        let text = String::from_utf8_lossy(&data);
        assert!(text.contains("init\0") && text.contains("TRAILER!!!\0"));
    }
}
