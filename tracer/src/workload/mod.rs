//! Workloads with known ground truth: two tasks bouncing a token, pinned to
//! one CPU so that every round trip forces two switches (and rings of more
//! tasks, for `tracer bench --sweep`). The live tests and
//! `tracer bench` run them and check the tracer against the kernel's own
//! accounting (`getrusage`).
//!
//! The side that runs in a forked child only makes async-signal-safe calls
//! (raw syscalls on memory and descriptors prepared before the fork), so the
//! workloads can be started from a multi-threaded process.

mod accounting;
mod affinity;
mod churn;
mod fork;
pub mod perf_sched;
mod ping_pong;
mod ring;
pub mod scenario;
mod shared;
mod side;
mod spec;
pub mod spinners;

pub use accounting::process_switches;
pub use affinity::pin;
pub use churn::{Churn, churn};
pub use ping_pong::{Outcome, run};
pub use ring::{Ring, run_ring, touch_alone};
pub use spec::{PingPong, Spec, Via};
