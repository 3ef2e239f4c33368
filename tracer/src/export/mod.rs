//! Outputs for other tools: a Prometheus endpoint, HdrHistogram interval
//! logs and SVG plots, all from the same per-class histograms as the reports.

pub mod hdrlog;
pub mod http;
pub mod label;
pub mod plot;
pub mod prometheus;
pub mod sweep_plot;

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

/// Why an output file (`--hdr-log`, `--plot`) could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OutputFileError {
    #[error("{}: is a symbolic link; refusing to write through it (remove it or name another file)", .0.display())]
    Symlink(PathBuf),
    #[error("{}: not a regular file; refusing to write to it", .0.display())]
    NotRegular(PathBuf),
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
}

/// Creates (or truncates) a regular file for writing, without following a
/// symbolic link planted at `path` (`O_NOFOLLOW`), and without truncating or
/// blocking on anything that is not a regular file (a FIFO, a device).
pub fn create_output(path: &Path) -> Result<File, OutputFileError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                OutputFileError::Symlink(path.to_owned())
            } else {
                OutputFileError::Create {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
    let create = |source| OutputFileError::Create {
        path: path.to_owned(),
        source,
    };
    let kind = file.metadata().map_err(create)?.file_type();
    if !kind.is_file() || kind.is_fifo() {
        return Err(OutputFileError::NotRegular(path.to_owned()));
    }
    // Only now, knowing it is our regular file, drop what it held before.
    file.set_len(0).map_err(create)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_planted_symlink_and_leaves_its_target_alone() {
        let dir = std::env::temp_dir().join(format!("tracer-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "precious").unwrap();
        let link = dir.join("out.svg");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = create_output(&link).unwrap_err();
        assert!(matches!(err, OutputFileError::Symlink(_)), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");

        // A regular file is truncated and written.
        let plain = dir.join("plain");
        std::fs::write(&plain, "old contents").unwrap();
        use std::io::Write as _;
        create_output(&plain).unwrap().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "new");

        // A directory, and a path in a missing directory.
        assert!(matches!(
            create_output(&dir),
            Err(OutputFileError::Create { .. }) | Err(OutputFileError::NotRegular(_))
        ));
        let missing = create_output(&dir.join("nope/x")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot create"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
