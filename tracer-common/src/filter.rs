//! What the kernel programs need to filter switches: the filter bits and the
//! cgroup lookup's layout.

/// Task filters (bits of [`crate::names::global::FILTER`]). A switch is
/// traced when prev or next passes every task filter that is set, and it
/// happens on a selected CPU.
pub const FILTER_TGID: u32 = 1;
pub const FILTER_TID: u32 = 2;
pub const FILTER_COMM: u32 = 4;
pub const FILTER_CPU: u32 = 8;
pub const FILTER_CGROUP: u32 = 16;

/// Where a task's cgroup v2 ancestors are, and which one to look for: the
/// offsets come from the running kernel's BTF, the cgroup from `--cgroup`
/// ([`crate::names::global::FILTER_CGROUP_SPEC`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupFilter {
    /// The wanted cgroup's id (its inode number in cgroupfs).
    pub id: u64,
    /// Its depth below the root (the root is 0).
    pub level: u32,
    /// `task_struct.cgroups`.
    pub task_cgroups: u32,
    /// `css_set.dfl_cgrp`.
    pub dfl_cgrp: u32,
    /// `cgroup.level`.
    pub cgroup_level: u32,
    /// `cgroup.ancestors` (pointers) or `cgroup.ancestor_ids` (ids).
    pub ancestors: u32,
    /// Non-zero: `ancestors` holds ids; zero: pointers to follow to `kn->id`.
    pub ancestor_ids: u32,
    /// `cgroup.kn`.
    pub kn: u32,
    /// `kernfs_node.id`.
    pub kn_id: u32,
}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, a `u64` then eight `u32`s, no padding; every bit pattern is valid.
unsafe impl aya::Pod for CgroupFilter {}
