//! `tracer -- COMMAND`: start a command held at the door until its pid is in
//! the kernel's process filter, then let it run (as the invoking user when
//! started through sudo).

use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, OwnedFd, RawFd},
        unix::ffi::OsStrExt,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the command is empty")]
    Empty,
    #[error("an argument of the command contains a NUL byte")]
    Nul,
    #[error("cannot start `{cmd}`: {source}")]
    Start { cmd: String, source: io::Error },
    #[error("SUDO_UID/SUDO_GID are not numbers: {0}")]
    SudoIds(String),
}

/// Who the command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Credentials {
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
}

/// Under sudo as root: the invoking user's ids and groups.
fn sudo_credentials() -> Result<Option<Credentials>, CommandError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let (Ok(uid), Ok(gid)) = (std::env::var("SUDO_UID"), std::env::var("SUDO_GID")) else {
        return Ok(None);
    };
    let bad = || CommandError::SudoIds(format!("{uid}/{gid}"));
    let uid: libc::uid_t = uid.parse().map_err(|_| bad())?;
    let gid: libc::gid_t = gid.parse().map_err(|_| bad())?;
    if uid == 0 {
        return Ok(None);
    }
    let mut groups = vec![gid];
    if let Some(user) = std::env::var("SUDO_USER").ok().and_then(|u| CString::new(u).ok()) {
        let mut n: libc::c_int = 64;
        loop {
            let mut buf = vec![0 as libc::gid_t; n as usize];
            let mut count = n;
            // SAFETY: `buf` has room for `count` groups; `user` is NUL-terminated.
            let r = unsafe { libc::getgrouplist(user.as_ptr(), gid, buf.as_mut_ptr(), &mut count) };
            if r >= 0 {
                buf.truncate(count as usize);
                groups = buf;
                break;
            }
            if count <= n || count > 65_536 {
                break;
            }
            n = count;
        }
    }
    Ok(Some(Credentials { uid, gid, groups }))
}

/// A started command, waiting for [`Launched::release`].
pub struct Launched {
    pub pid: libc::pid_t,
    gate: Option<OwnedFd>,
    exec_error: OwnedFd,
    cmd: String,
}

/// A command line for messages (lossy, escaped where not printable).
pub fn display(argv: &[std::ffi::OsString]) -> String {
    argv.iter()
        .map(|a| crate::report::escape_comm(a.as_bytes()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Forks the command; it waits before exec until released.
pub fn launch(argv: &[std::ffi::OsString]) -> Result<Launched, CommandError> {
    let cmd = display(argv);
    let start = |source| CommandError::Start {
        cmd: cmd.clone(),
        source,
    };
    let program = argv.first().ok_or(CommandError::Empty)?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| CommandError::Nul))
        .collect::<Result<_, _>>()?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let program = CString::new(program.as_bytes()).map_err(|_| CommandError::Nul)?;
    let creds = sudo_credentials()?;
    let (gate_rx, gate_tx) = crate::kernel::sys::pipe().map_err(start)?;
    let (err_rx, err_tx) = crate::kernel::sys::pipe().map_err(start)?;

    // SAFETY: the child only makes async-signal-safe calls (read, setgroups,
    // setgid, setuid, execvp, write, _exit) on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(start(io::Error::last_os_error()));
    }
    if pid == 0 {
        let errno = child(gate_rx.as_raw_fd(), creds.as_ref(), &program, &arg_ptrs);
        let bytes = errno.to_ne_bytes();
        // SAFETY: writes 4 bytes from a local array, then ends the child.
        unsafe {
            libc::write(err_tx.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    drop((gate_rx, err_tx));
    Ok(Launched {
        pid,
        gate: Some(gate_tx),
        exec_error: err_rx,
        cmd,
    })
}

/// In the child: wait at the gate, become the user, exec. Returns the errno
/// of what failed. Async-signal-safe.
fn child(gate: RawFd, creds: Option<&Credentials>, program: &CString, argv: &[*const libc::c_char]) -> i32 {
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
    let mut byte = [0u8];
    // SAFETY: one writable byte. EOF means the tracer went away before
    // releasing the command: fail rather than run untraced.
    let n = unsafe { libc::read(gate, byte.as_mut_ptr().cast(), 1) };
    if n != 1 {
        return libc::ECANCELED;
    }
    if let Some(c) = creds {
        // SAFETY: plain syscalls with a valid groups array.
        unsafe {
            if libc::setgroups(c.groups.len(), c.groups.as_ptr()) != 0
                || libc::setgid(c.gid) != 0
                || libc::setuid(c.uid) != 0
            {
                return errno();
            }
        }
    }
    // SAFETY: `program` and `argv` are NUL-terminated and outlive the call.
    unsafe { libc::execvp(program.as_ptr(), argv.as_ptr()) };
    errno()
}

impl Launched {
    /// Lets the command run; fails if it could not be executed.
    pub fn release(&mut self) -> Result<(), CommandError> {
        let start = |source| CommandError::Start {
            cmd: self.cmd.clone(),
            source,
        };
        if let Some(gate) = self.gate.take() {
            // SAFETY: writes one byte from a local array.
            if unsafe { libc::write(gate.as_raw_fd(), [1u8].as_ptr().cast(), 1) } != 1 {
                return Err(start(io::Error::last_os_error()));
            }
        }
        let mut errno = [0u8; 4];
        // SAFETY: reads at most 4 bytes into a local array. EOF (0) means exec succeeded.
        let n = unsafe { libc::read(self.exec_error.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n == 4 {
            return Err(start(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))));
        }
        Ok(())
    }
}

/// Waits for the command and returns the exit code to pass on: its own, or
/// 128 + the signal that killed it.
pub fn wait(pid: libc::pid_t) -> io::Result<u8> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        128u8.wrapping_add(libc::WTERMSIG(status) as u8)
    } else {
        1
    })
}
