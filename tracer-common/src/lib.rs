//! Types shared by the kernel programs (`tracer-ebpf`) and the CLI (`tracer`).
//!
//! Everything here is `#[repr(C)]` with explicit padding so that the bytes the
//! kernel writes into a map are exactly the bytes userspace reads back.
#![no_std]

pub mod class;
pub mod hist;
pub mod maps;

pub use class::Class;
