//! The guest's initramfs: its /init (init.sh), Debian's static busybox as
//! its shell and the static tracer binary (no libraries: what runs there
//! would run on any host), written as a newc cpio archive.

use std::{collections::BTreeSet, fs, io::Write as _, path::Path};

use anyhow::{Context as _, bail};

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

/// The guest's /init: mounts what tracer needs, runs the checks, prints each
/// result on one line after a marker, powers off. ROUND_TRIPS,
/// CGROUP_ROUND_TRIPS and PER_PROCESS_CHILDREN are replaced by the constants
/// above.
const INIT: &str = include_str!("init.sh");

/// Writes the matrix guest's initramfs (a newc cpio archive).
pub(super) fn build_initramfs(tracer: &Path, busybox: &Path, out: &Path) -> anyhow::Result<()> {
    let init = INIT
        .replace("CGROUP_ROUND_TRIPS", &CGROUP_ROUND_TRIPS.to_string())
        .replace("PER_PROCESS_CHILDREN", &PER_PROCESS_CHILDREN.to_string())
        .replace("ROUND_TRIPS", &GUEST_ROUND_TRIPS.to_string());
    write_initramfs(tracer, busybox, &init, out)
}

/// Writes an initramfs with `init` as its /init (a newc cpio archive).
pub(crate) fn write_initramfs(tracer: &Path, busybox: &Path, init: &str, out: &Path) -> anyhow::Result<()> {
    // The guests have no libraries: what runs there runs on any host.
    if !is_static(tracer)? {
        bail!(
            "{} is not a static binary (the guests have no libraries)",
            tracer.display()
        );
    }
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib64", "usr", "usr/lib"] {
        cpio.dir(dir);
    }
    cpio.file("init", init.as_bytes(), 0o755);
    cpio.file("bin/busybox", &fs::read(busybox)?, 0o755);
    cpio.file("tracer", &fs::read(tracer)?, 0o755);
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(out, cpio.finish())?;
    Ok(())
}

/// Whether `binary` runs without shared libraries: a 64-bit ELF file with
/// no interpreter segment (PT_INTERP): static, or static-pie.
pub(crate) fn is_static(binary: &Path) -> anyhow::Result<bool> {
    use object::read::elf::{FileHeader as _, ProgramHeader as _};
    let data = fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let not_elf = || format!("{} is not a 64-bit ELF file", binary.display());
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*data).with_context(not_elf)?;
    let endian = header.endian().with_context(not_elf)?;
    let segments = header.program_headers(endian, &*data).with_context(not_elf)?;
    Ok(!segments.iter().any(|s| s.p_type(endian) == object::elf::PT_INTERP))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic() {
        // This test binary links the host's libc.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static(&me).unwrap());
        assert!(is_static(Path::new("/nonexistent")).is_err());
        assert!(is_static(Path::new("/etc/hostname")).is_err());
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
