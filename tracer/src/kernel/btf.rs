//! What the kernel programs need from the running kernel's BTF: the byte
//! offsets of the `task_struct` members they read, and which tracepoints
//! exist. Nothing is compiled in from one kernel build.

use std::path::{Path, PathBuf};

use btf_rs::{Btf, Type};

/// Where the kernel exposes its own BTF (needs `CONFIG_DEBUG_INFO_BTF=y`).
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error(
        "this kernel exposes no BTF ({0} is missing; it needs CONFIG_DEBUG_INFO_BTF=y), so the tp_btf probe cannot be loaded"
    )]
    Missing(PathBuf),
    #[error("cannot read kernel BTF at {path}: {source}")]
    Unreadable { path: PathBuf, source: btf_rs::Error },
    #[error("kernel BTF has no `struct {0}`")]
    NoStruct(&'static str),
    #[error("kernel BTF: `struct {strukt}` has no member `{member}`")]
    NoMember { strukt: &'static str, member: &'static str },
    #[error(
        "kernel BTF: `{strukt}.{member}` is {found} bytes at bit {bit_offset}, expected a byte-aligned {expected}-byte integer"
    )]
    UnexpectedMember {
        strukt: &'static str,
        member: &'static str,
        found: usize,
        expected: usize,
        bit_offset: u32,
    },
    #[error("kernel BTF is malformed: {0}")]
    Malformed(#[from] btf_rs::Error),
}

/// Byte offsets of the `task_struct` members the kernel programs read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskOffsets {
    pub pid: u32,
    pub tgid: u32,
    pub flags: u32,
    /// `char comm[16]`.
    pub comm: u32,
}

/// Where `sched_switch` finds the state `prev` leaves in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrevState {
    /// The tracepoint's `prev_state` argument (Linux 5.18+).
    Argument,
    /// `task_struct` member at this byte offset.
    TaskField(u32),
}

impl PrevState {
    /// The value of the kernel programs' [`tracer_common::names::global::TASK_PREV_STATE_OFFSET`].
    pub fn global(self) -> u32 {
        match self {
            PrevState::Argument => tracer_common::values::PREV_STATE_FROM_ARGUMENT,
            PrevState::TaskField(off) => off,
        }
    }
}

/// Where a cgroup keeps its ancestors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ancestors {
    /// `struct cgroup *ancestors[]`, each to be followed to `kn->id`.
    Pointers { array: u32, kn: u32, kn_id: u32 },
    /// `u64 ancestor_ids[]`.
    Ids { array: u32 },
}

/// Byte offsets of the chain from a task to its cgroup v2 ancestors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupOffsets {
    pub task_cgroups: u32,
    pub dfl_cgrp: u32,
    pub level: u32,
    pub ancestors: Ancestors,
}

/// The running kernel's BTF, parsed.
pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    /// Parses [`VMLINUX_BTF`].
    pub fn from_sys() -> Result<Self, BtfError> {
        Self::from_file(Path::new(VMLINUX_BTF))
    }

    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        if !path.exists() {
            return Err(BtfError::Missing(path.to_owned()));
        }
        let btf = Btf::from_file(path).map_err(|source| BtfError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { btf })
    }

    /// Offsets of `task_struct.pid`, `.tgid` and `.flags`.
    pub fn task_offsets(&self) -> Result<TaskOffsets, BtfError> {
        Ok(TaskOffsets {
            pid: self.member_offset("task_struct", "pid", Some(4))?,
            tgid: self.member_offset("task_struct", "tgid", Some(4))?,
            flags: self.member_offset("task_struct", "flags", Some(4))?,
            comm: self.member_offset("task_struct", "comm", Some(16))?,
        })
    }

    /// Offsets to find a task's cgroup v2 ancestors, for `--cgroup`:
    /// `task->cgroups->dfl_cgrp`, then `cgroup->level` and either
    /// `cgroup->ancestors[level]->kn->id` (Linux 5.18+) or
    /// `cgroup->ancestor_ids[level]` (older).
    pub fn cgroup_offsets(&self) -> Result<CgroupOffsets, BtfError> {
        let ancestors = match self.member_offset("cgroup", "ancestors", None) {
            Ok(off) => Ancestors::Pointers {
                array: off,
                kn: self.member_offset("cgroup", "kn", Some(8))?,
                kn_id: self.member_offset("kernfs_node", "id", Some(8))?,
            },
            Err(BtfError::NoMember { .. }) => Ancestors::Ids {
                array: self.member_offset("cgroup", "ancestor_ids", None)?,
            },
            Err(e) => return Err(e),
        };
        Ok(CgroupOffsets {
            task_cgroups: self.member_offset("task_struct", "cgroups", Some(8))?,
            dfl_cgrp: self.member_offset("css_set", "dfl_cgrp", Some(8))?,
            level: self.member_offset("cgroup", "level", Some(4))?,
            ancestors,
        })
    }

    /// Number of arguments of a tracepoint (without the tracing `void *__data`
    /// the kernel adds in front), from its `btf_trace_<name>` typedef.
    pub fn tracepoint_args(&self, name: &str) -> Option<usize> {
        let types = self.btf.resolve_types_by_name(&format!("btf_trace_{name}")).ok()?;
        let Some(Type::Typedef(t)) = types.into_iter().next() else {
            return None;
        };
        let Type::Ptr(ptr) = self.btf.resolve_chained_type(&t).ok()? else {
            return None;
        };
        let Type::FuncProto(proto) = self.btf.resolve_chained_type(&ptr).ok()? else {
            return None;
        };
        proto.parameters.len().checked_sub(1)
    }

    /// Where `sched_switch` gets `prev_state` from: its fourth argument
    /// (Linux 5.18+) or, before that, `prev->__state` (5.14+) or
    /// `prev->state`, whose byte offset is returned. Both are read as a u32
    /// (the low half of 5.10's `long state` on little-endian hosts).
    pub fn prev_state(&self) -> Result<PrevState, BtfError> {
        if self.tracepoint_args("sched_switch").is_some_and(|n| n >= 4) {
            return Ok(PrevState::Argument);
        }
        match self.member_offset("task_struct", "__state", Some(4)) {
            Ok(off) => Ok(PrevState::TaskField(off)),
            Err(BtfError::NoMember { .. }) => Ok(PrevState::TaskField(self.member_offset(
                "task_struct",
                "state",
                Some(8),
            )?)),
            Err(e) => Err(e),
        }
    }

    /// Whether the kernel has a tracepoint a tp_btf program can attach to
    /// (the kernel declares a `btf_trace_<name>` typedef for each one).
    pub fn has_tracepoint(&self, name: &str) -> bool {
        self.btf
            .resolve_ids_by_name(&format!("btf_trace_{name}"))
            .is_ok_and(|ids| !ids.is_empty())
    }

    /// Byte offset of `strukt.member`, looking inside anonymous struct and
    /// union members (e.g. the randomized-layout block of `task_struct`).
    /// `expected_size`: the member's size in bytes, checked when given.
    fn member_offset(
        &self,
        strukt: &'static str,
        member: &'static str,
        expected_size: Option<usize>,
    ) -> Result<u32, BtfError> {
        let types = self.btf.resolve_types_by_name(strukt).unwrap_or_default();
        let Some(Type::Struct(s)) = types
            .into_iter()
            .find(|t| matches!(t, Type::Struct(s) if !s.members.is_empty()))
        else {
            return Err(BtfError::NoStruct(strukt));
        };
        let (bit_offset, ty) = self
            .find_member(&s.members, member, 0)?
            .ok_or(BtfError::NoMember { strukt, member })?;
        let size = self.type_size(&ty)?;
        if expected_size.is_some_and(|e| e != size) || bit_offset % 8 != 0 {
            return Err(BtfError::UnexpectedMember {
                strukt,
                member,
                found: size,
                expected: expected_size.unwrap_or(size),
                bit_offset,
            });
        }
        Ok(bit_offset / 8)
    }

    /// Depth-first search for a named member; returns its bit offset from
    /// the start of the outermost struct and its type.
    fn find_member(
        &self,
        members: &[btf_rs::Member],
        name: &str,
        base_bits: u32,
    ) -> Result<Option<(u32, Type)>, BtfError> {
        for m in members {
            if m.bitfield_size().is_some_and(|bits| bits != 0) {
                continue;
            }
            let member_name = self.btf.resolve_name(m).unwrap_or_default();
            let offset = base_bits + m.bit_offset();
            if member_name == name {
                return Ok(Some((offset, self.btf.resolve_chained_type(m)?)));
            }
            if member_name.is_empty()
                && let Type::Struct(inner) | Type::Union(inner) = self.btf.resolve_chained_type(m)?
                && let Some(found) = self.find_member(&inner.members, name, offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Size in bytes of an integer-like type, looking through typedefs and
    /// qualifiers.
    fn type_size(&self, ty: &Type) -> Result<usize, BtfError> {
        let mut ty = ty.clone();
        for _ in 0..16 {
            match ty {
                Type::Int(i) => return Ok(i.size()),
                Type::Ptr(_) => return Ok(8),
                Type::Enum(e) => return Ok(e.size()),
                Type::Array(a) => {
                    let elem = self.btf.resolve_chained_type(&a)?;
                    return Ok(a.len() * self.type_size(&elem)?);
                }
                Type::Typedef(_) | Type::Volatile(_) | Type::Const(_) | Type::Restrict(_) | Type::TypeTag(_) => {
                    let Some(inner) = ty.as_btf_type() else { return Ok(0) };
                    ty = self.btf.resolve_chained_type(inner)?;
                }
                _ => return Ok(0),
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = KernelBtf::from_file(Path::new("/nonexistent/vmlinux")).err().unwrap();
        assert!(matches!(err, BtfError::Missing(_)));
        assert!(err.to_string().contains("CONFIG_DEBUG_INFO_BTF"));
    }

    /// Reads this machine's BTF when it has one (every CI machine does). The
    /// expected values are the kernel's own: `pid` and `tgid` are adjacent
    /// `pid_t`s, and the idle task's flags are not at offset 0.
    #[test]
    fn resolves_task_struct_on_this_kernel() {
        if !Path::new(VMLINUX_BTF).exists() {
            eprintln!("skipped: {VMLINUX_BTF} not present on this machine");
            return;
        }
        let btf = KernelBtf::from_sys().unwrap();
        let off = btf.task_offsets().unwrap();
        assert_eq!(off.tgid, off.pid + 4, "{off:?}");
        assert!(off.flags > 0 && off.flags < off.pid, "{off:?}");
        assert!(off.comm > off.tgid, "{off:?}");
        let cg = btf.cgroup_offsets().unwrap();
        assert!(
            matches!(cg.ancestors, Ancestors::Pointers { .. } | Ancestors::Ids { .. }),
            "{cg:?}"
        );
        assert!(btf.has_tracepoint("sched_switch"));
        assert!(!btf.has_tracepoint("no_such_tracepoint_xyz"));
    }
}
