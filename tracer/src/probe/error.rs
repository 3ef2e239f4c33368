//! What can go wrong when loading, attaching or reading the programs.

use crate::kernel::{btf::BtfError, privilege::PrivilegeError};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("cannot parse kernel BTF for loading: {0}")]
    AyaBtf(#[from] aya::BtfError),
    #[error("cannot load the kernel programs: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("cannot {action} program `{program}`: {source}")]
    Program {
        action: &'static str,
        program: &'static str,
        source: aya::programs::ProgramError,
    },
    #[error(transparent)]
    Tracefs(#[from] crate::kernel::tracefs::TracefsError),
    #[error("{0}")]
    Unsupported(String),
    #[error("kernel object has no {0}")]
    Missing(String),
    #[error("cannot use map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
}
