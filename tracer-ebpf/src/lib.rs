//! Exists so that `tracer`'s build script can depend on this crate: cargo then
//! rebuilds the embedded kernel object whenever the programs change.
#![no_std]
