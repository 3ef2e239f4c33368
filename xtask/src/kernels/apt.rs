//! The kernels' and busybox's Debian packages, fetched with apt-get through
//! a private apt state (sources, lists, cache) under target/kernels/apt, and
//! unpacked with dpkg-deb.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use super::{DEBIAN, Kernel};

/// Where the guest's static busybox comes from.
const BUSYBOX_SUITE: (&str, &str) = (DEBIAN, "bookworm");

/// apt-get with its own sources, lists and cache: nothing of the machine's
/// apt configuration is read or changed.
pub(super) struct Apt {
    root: PathBuf,
}

impl Apt {
    pub(super) fn new(root: &Path, kernels: &[&Kernel]) -> anyhow::Result<Self> {
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
            // The guests' architectures, whatever this machine's is.
            "-o".to_owned(),
            "APT::Architectures::=amd64".to_owned(),
            "-o".to_owned(),
            "APT::Architectures::=arm64".to_owned(),
        ]);
        cmd.current_dir(self.root.join("debs"));
        cmd
    }

    /// Downloads `package` (`name` or `name/suite`) of architecture `arch`
    /// unless a .deb of that name is already here; returns its path.
    fn download(&self, package: &str, arch: &str, version: Option<&str>) -> anyhow::Result<PathBuf> {
        let name = package.split('/').next().unwrap_or(package);
        let suite = package.split_once('/').map(|(_, s)| s);
        let debs = self.root.join("debs");
        let find = |version: Option<&str>| -> Option<PathBuf> {
            let prefix = format!("{name}_");
            let suffix = format!("_{arch}.deb");
            fs::read_dir(&debs)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| {
                    let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
                    file.starts_with(&prefix)
                        && file.ends_with(&suffix)
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
        let spec = match (version, suite) {
            (Some(v), _) => format!("{name}:{arch}={v}"),
            (None, Some(suite)) => format!("{name}:{arch}/{suite}"),
            (None, None) => format!("{name}:{arch}"),
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

    /// Debian's static busybox of `arch`, extracted to `dir/busybox-ARCH`.
    pub(super) fn busybox(&self, dir: &Path, arch: &str) -> anyhow::Result<PathBuf> {
        let deb = self.download(&format!("busybox-static/{}", BUSYBOX_SUITE.1), arch, None)?;
        let tree = dir.join("busybox-tree");
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(&tree)?;
        crate::setup::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        let found = ["bin/busybox", "usr/bin/busybox"]
            .iter()
            .map(|p| tree.join(p))
            .find(|p| p.is_file())
            .with_context(|| format!("no bin/busybox in {}", deb.display()))?;
        let busybox = dir.join(format!("busybox-{arch}"));
        fs::rename(found, &busybox)?;
        fs::remove_dir_all(&tree)?;
        Ok(busybox)
    }

    /// The kernel image of `kernel`, extracted under `dir`.
    pub(super) fn vmlinuz(&self, kernel: &Kernel, dir: &Path) -> anyhow::Result<PathBuf> {
        let arch = kernel.arch.debian;
        let meta = self.download(&format!("{}/{}", kernel.meta, kernel.suite), arch, None)?;
        let depends = deb_field(&meta, "Depends")?;
        let (image, version) = depends_on(&depends, "linux-image-")
            .with_context(|| format!("{} depends on no linux-image package: {depends}", meta.display()))?;
        let abi = image.trim_start_matches("linux-image-");
        let out = dir.join(abi);
        let vmlinuz = out.join("vmlinuz");
        if vmlinuz.exists() {
            return Ok(vmlinuz);
        }
        let deb = self.download(&image, arch, Some(&version))?;
        let mut found = extract_vmlinuz(&deb, &out)?;
        if found.is_none() {
            // Since 7.x the image package only depends on linux-binary-ABI,
            // which has the kernel (and linux-base-ABI the config).
            let image_depends = deb_field(&deb, "Depends")?;
            let (binary, version) = depends_on(&image_depends, "linux-binary-")
                .with_context(|| format!("{} has no vmlinuz and no linux-binary dependency", deb.display()))?;
            let deb = self.download(&binary, arch, Some(&version))?;
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
}
