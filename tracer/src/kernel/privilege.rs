//! Can this process load and attach tracing programs? Checked before anything
//! is loaded, so the user gets one clear line instead of a verifier `EPERM`.

use std::fs;

/// Capability numbers from `include/uapi/linux/capability.h`.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "tracer needs root (or the capabilities CAP_BPF and CAP_PERFMON) to load its kernel programs; missing: {missing}. Run it with sudo"
    )]
    Missing { missing: String },
    #[error("cannot read this process's capabilities from /proc/self/status: {0}")]
    Unreadable(String),
}

/// Effective capability set of this process (`CapEff` in /proc/self/status).
fn effective_caps() -> Result<u64, PrivilegeError> {
    let status = fs::read_to_string("/proc/self/status").map_err(|e| PrivilegeError::Unreadable(e.to_string()))?;
    parse_cap_eff(&status).ok_or_else(|| PrivilegeError::Unreadable("no CapEff line".into()))
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The capabilities missing to trace, by name; empty when tracing is allowed.
/// CAP_SYS_ADMIN alone also suffices (kernels before 5.8 only know it).
fn missing(caps: u64) -> Vec<&'static str> {
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// Fails with a message naming what is missing.
pub fn check() -> Result<(), PrivilegeError> {
    let missing = missing(effective_caps()?);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::Missing {
            missing: missing.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }

    #[test]
    fn names_what_is_missing() {
        assert!(missing(0x1ff_ffff_ffff).is_empty());
        assert!(missing(1 << CAP_SYS_ADMIN).is_empty());
        assert!(missing((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert_eq!(missing(1 << CAP_BPF), vec!["CAP_PERFMON"]);
        assert_eq!(missing(0), vec!["CAP_BPF", "CAP_PERFMON"]);
    }
}
