//! Off-CPU and run-queue stamps: kept per thread wherever it runs, so a
//! filter never makes a sample span time the thread spent elsewhere.

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use super::*;
use tracer::probe::filter::Filter;

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) {
    tracer::workload::pin(cpu).unwrap_or_else(|e| panic!("cannot pin to CPU {cpu}: {e}"));
}

/// With `--cpu 1`, a thread that leaves CPU 1, runs and sleeps on CPU 0 for
/// 300 ms and comes back is measured from its last switch-out (on CPU 0,
/// untraced), not from the one on CPU 1 before it left: every off-CPU and
/// run-queue sample stays far below 300 ms. With stamps kept only on the
/// traced CPU, its return would be one off-CPU sample of over 300 ms.
#[test]
fn a_thread_back_from_another_cpu_is_measured_from_its_last_switch_out() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("skipped: needs two CPUs");
        return;
    }
    const AWAY: Duration = Duration::from_millis(300);
    for probe in [ProbeKind::TpBtf, ProbeKind::Tracepoint] {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            pin(1);
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
            go_rx.recv().unwrap();
            let naps = |n| (0..n).for_each(|_| std::thread::sleep(Duration::from_millis(1)));
            naps(20);
            pin(0);
            let end = Instant::now() + AWAY;
            while Instant::now() < end {
                naps(1);
                let spin = Instant::now() + Duration::from_millis(20);
                while Instant::now() < spin {
                    std::hint::spin_loop();
                }
            }
            pin(1);
            naps(20);
        });
        let tid = tid_rx.recv().unwrap();
        let mut probes = Probes::attach(ProbeOptions {
            metrics: MetricSet::ALL,
            filter: Filter::new(&[], &[tid], None, Some(&[1]), None, false).unwrap(),
            probe,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{}: cannot attach: {e}", probe.name()));
        let before = probes.snapshot().unwrap();
        go_tx.send(()).unwrap();
        worker.join().unwrap();
        let delta = probes.snapshot().unwrap().since(&before);
        for metric in [Metric::Offcpu, Metric::Runq] {
            let (samples, max) = samples_and_max(&delta, metric);
            eprintln!("{}: {samples} {} samples, longest {max} ns", probe.name(), metric.key());
            assert!(samples >= 20, "{}: {samples} {} samples", probe.name(), metric.key());
            assert!(
                u128::from(max) < AWAY.as_nanos() / 3,
                "{}: {} of {max} ns spans the time the thread spent on CPU 0",
                probe.name(),
                metric.key()
            );
        }
    }
}
