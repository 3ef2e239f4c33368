//! A BTF-defined `BPF_MAP_TYPE_TASK_STORAGE` map: a value that lives in the
//! task itself and is freed by the kernel when the task goes away, so
//! per-task state needs no cleanup and cannot grow without bound.
//! aya-ebpf 0.3 has inode, socket and cgroup storage but not task storage.

use core::ptr;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type::BPF_MAP_TYPE_TASK_STORAGE},
    helpers::generated::bpf_task_storage_get,
};

/// The map definition in the layout libbpf and aya read from `.maps` BTF:
/// every field is a pointer whose pointee type or array length carries a
/// value. Never dereferenced.
#[repr(C)]
pub struct TaskStorage<T> {
    r#type: *const [i32; BPF_MAP_TYPE_TASK_STORAGE as usize],
    key: *const i32,
    value: *const T,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
}

// SAFETY: the fields are placeholders that are never dereferenced; the kernel
// synchronizes access to the storage itself.
unsafe impl<T> Sync for TaskStorage<T> {}

impl<T> TaskStorage<T> {
    pub const fn new() -> Self {
        Self {
            r#type: ptr::null(),
            key: ptr::null(),
            value: ptr::null(),
            max_entries: ptr::null(),
            map_flags: ptr::null(),
        }
    }

    /// The task's value, created zeroed when `create` and absent; null when
    /// absent (or on allocation failure).
    ///
    /// # Safety
    /// `task` must be a `struct task_struct *` the verifier trusts (a tp_btf
    /// argument).
    #[inline(always)]
    pub unsafe fn get(&self, task: *const u8, create: bool) -> *mut T {
        let flags = if create {
            BPF_LOCAL_STORAGE_GET_F_CREATE as u64
        } else {
            0
        };
        // SAFETY: `self` is the map (the loader patches the reference), `task`
        // per the contract, no initial value.
        unsafe {
            bpf_task_storage_get(
                ptr::from_ref(self).cast_mut().cast(),
                task.cast_mut().cast(),
                ptr::null_mut(),
                flags,
            )
        }
        .cast()
    }
}
