//! What a ping-pong run is: which two tasks bounce the token, how it
//! travels, on which CPU, and how many times.

/// Which two tasks bounce the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingPong {
    /// Two threads of this process: thread switches.
    Threads,
    /// A thread of this process and a forked child: process switches.
    Processes,
}

impl PingPong {
    /// How reports name the workload.
    pub fn name(self) -> &'static str {
        match self {
            PingPong::Threads => "thread",
            PingPong::Processes => "process",
        }
    }

    /// The class every switch of the workload belongs to.
    pub fn class(self) -> tracer_common::Class {
        match self {
            PingPong::Threads => tracer_common::Class::Thread,
            PingPong::Processes => tracer_common::Class::Process,
        }
    }
}

/// How the token travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// One byte over a pair of pipes.
    Pipe,
    /// A word in shared memory, with futex wait/wake.
    Futex,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Pipe => "pipe",
            Via::Futex => "futex",
        }
    }
}

/// One workload run.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub kind: PingPong,
    pub via: Via,
    pub cpu: usize,
    pub round_trips: u64,
    /// Bytes each side touches (one write per 64-byte line) between switches.
    pub working_set: usize,
}

impl Spec {
    pub fn new(kind: PingPong, cpu: usize, round_trips: u64) -> Self {
        Self {
            kind,
            via: Via::Pipe,
            cpu,
            round_trips,
            working_set: 0,
        }
    }
}
