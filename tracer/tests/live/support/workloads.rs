//! Workloads made for the filter tests: noise to keep out, two identical
//! helpers on different CPUs, a cgroup, a ping-pong that tells its tids.

use crate::*;

/// Runs an unrelated process ping-pong on CPU 0 until dropped, so that a
/// filter has something to keep out.
pub(crate) struct Noise {
    pub(crate) stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(crate) thread: Option<std::thread::JoinHandle<u64>>,
}

impl Noise {
    pub(crate) fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut switches = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                switches += workload::run(&Spec::new(PingPong::Processes, 0, 5_000))
                    .unwrap()
                    .switches();
            }
            switches
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; returns how many switches it made.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Two identical thread ping-pong processes held at the start, one pinned to
/// CPU 1 (wanted) and one to CPU 0 (unwanted).
pub(crate) struct TwoHelpers {
    pub(crate) wanted: Reaper,
    pub(crate) unwanted: Reaper,
}

/// What a filtered run saw of [`TwoHelpers`].
pub(crate) struct TwoHelpersRun {
    pub(crate) report: Value,
    /// The kernel's count of each helper's ping-pong switches.
    pub(crate) wanted: u64,
    pub(crate) unwanted: u64,
}

impl TwoHelpers {
    pub(crate) fn start() -> Self {
        let helper = |cpu: &str| {
            Reaper(
                Command::new(env!("CARGO_BIN_EXE_tracer"))
                    .args([
                        "ping-pong",
                        "--kind",
                        "threads",
                        "--round-trips",
                        "50000",
                        "--wait-stdin",
                        "--cpu",
                        cpu,
                    ])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap(),
            )
        };
        Self {
            wanted: helper("1"),
            unwanted: helper("0"),
        }
    }

    /// Starts tracer with `args`, lets both helpers run, stops tracer.
    pub(crate) fn run_under(mut self, args: &[&str]) -> TwoHelpersRun {
        use std::io::Write as _;
        let mut tracer = spawn_tracer(["--json"].iter().chain(args));
        std::thread::sleep(Duration::from_millis(1500));
        for h in [&mut self.wanted, &mut self.unwanted] {
            h.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
        }
        let mut truth = Vec::new();
        for h in [&mut self.wanted, &mut self.unwanted] {
            let (status, s) = h.finish();
            assert!(status.success());
            truth.push(
                serde_json::from_str::<Value>(s.trim()).unwrap()["switches"]
                    .as_u64()
                    .unwrap(),
            );
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(tracer.0.id() as i32, libc::SIGINT) };
        let (status, stdout) = tracer.finish();
        assert!(status.success());
        let (_, report) = split_output(&stdout);
        TwoHelpersRun {
            report,
            wanted: truth[0],
            unwanted: truth[1],
        }
    }
}

impl TwoHelpersRun {
    /// The wanted helper's switches are all there, the unwanted one's are not.
    pub(crate) fn assert_only_wanted(&self, filter: &str) {
        let thread = class_switches(&self.report, "thread");
        eprintln!(
            "{filter}: thread {thread}, wanted made {}, unwanted made {}",
            self.wanted, self.unwanted
        );
        assert!(
            thread as f64 >= 0.99 * self.wanted as f64,
            "{filter}: wanted {thread} of {}",
            self.wanted
        );
        assert!(
            thread as f64 <= 1.01 * self.wanted as f64 + 200.0,
            "{filter}: unwanted got in: {thread} vs {} (+{} unwanted)",
            self.wanted,
            self.unwanted
        );
    }
}

/// A cgroup v2 made for the test, removed when dropped.
pub(crate) struct TestCgroup(pub(crate) std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("sub"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A pinned pipe ping-pong between two threads that tell their tids first
/// and start on `go`; returns the kernel's count of their switches.
pub(crate) fn tid_ping_pong(
    cpu: usize,
    round_trips: u64,
    tids: std::sync::mpsc::Sender<u32>,
    go: std::sync::Arc<std::sync::Barrier>,
) -> u64 {
    let mut fds = [0i32; 4];
    // SAFETY: two pipes into a four-element array.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(fds.as_mut_ptr().add(2)), 0);
    }
    let side = move |rx: i32,
                     tx: i32,
                     first: bool,
                     tids: std::sync::mpsc::Sender<u32>,
                     go: std::sync::Arc<std::sync::Barrier>| {
        // SAFETY: an all-zero cpu_set_t is valid; pins this thread; gettid and
        // getrusage have no preconditions; one-byte reads and writes on our pipes.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
            tids.send(libc::gettid() as u32).unwrap();
            go.wait();
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
            let before = ru.ru_nvcsw + ru.ru_nivcsw;
            let mut b = [0u8];
            for _ in 0..round_trips {
                if first {
                    libc::write(tx, b.as_ptr().cast(), 1);
                    libc::read(rx, b.as_mut_ptr().cast(), 1);
                } else {
                    libc::read(rx, b.as_mut_ptr().cast(), 1);
                    libc::write(tx, b.as_ptr().cast(), 1);
                }
            }
            libc::getrusage(libc::RUSAGE_THREAD, &mut ru);
            (ru.ru_nvcsw + ru.ru_nivcsw - before) as u64
        }
    };
    let (t2, g2) = (tids.clone(), go.clone());
    let a = std::thread::spawn(move || side(fds[0], fds[3], true, tids, go));
    let b = std::thread::spawn(move || side(fds[2], fds[1], false, t2, g2));
    let n = a.join().unwrap() + b.join().unwrap();
    // SAFETY: closes the pipes made above.
    unsafe {
        fds.iter().for_each(|&fd| {
            libc::close(fd);
        })
    };
    n
}
