//! Classification and counts against the kernel's own accounting, with both probes.

use super::*;

#[test]
fn thread_ping_pong_is_thread_class() {
    check_class(PingPong::Threads, Class::Thread, Class::Process, ProbeKind::TpBtf);
}

#[test]
fn thread_ping_pong_with_the_tracepoint_probe() {
    check_class(PingPong::Threads, Class::Thread, Class::Process, ProbeKind::Tracepoint);
}

#[test]
fn process_ping_pong_with_the_tracepoint_probe() {
    check_class(
        PingPong::Processes,
        Class::Process,
        Class::Thread,
        ProbeKind::Tracepoint,
    );
}

/// Both probes attached at once see the same workload the same way: every
/// class on the workload's CPU, voluntary and preempted, within a handful.
#[test]
fn both_probes_agree() {
    let (mut btf, mut tp) = (attach_with(ProbeKind::TpBtf), attach_with(ProbeKind::Tracepoint));
    assert_eq!((btf.probe.name(), tp.probe.name()), ("tp_btf", "tracepoint"));
    let cpus = [workload_cpu()];
    let (b0, t0) = (
        btf.snapshot_cpus(Some(&cpus)).unwrap(),
        tp.snapshot_cpus(Some(&cpus)).unwrap(),
    );
    workload::run(&Spec::new(PingPong::Threads, workload_cpu(), 30_000)).unwrap();
    workload::run(&Spec::new(PingPong::Processes, workload_cpu(), 30_000)).unwrap();
    let (b, t) = (
        btf.snapshot_cpus(Some(&cpus)).unwrap().since(&b0),
        tp.snapshot_cpus(Some(&cpus)).unwrap().since(&t0),
    );
    assert_eq!(t.unresolved, 0, "the tracepoint probe did not know some tasks");
    let (bc, tc) = (
        b.per_cpu_counts[workload_cpu()].by_class,
        t.per_cpu_counts[workload_cpu()].by_class,
    );
    eprintln!("tp_btf {bc:?}\ntracepoint {tc:?}");
    for class in Class::ALL {
        for kind in 0..2 {
            let (x, y) = (bc[class.index()][kind], tc[class.index()][kind]);
            // The two programs attach a moment apart and read their snapshots
            // a moment apart: a few switches of slack, nothing more.
            assert!(
                x.abs_diff(y) <= 20 + x / 1000,
                "{class:?}[{kind}]: tp_btf {x}, tracepoint {y}"
            );
        }
    }
}

#[test]
fn process_ping_pong_is_process_class() {
    check_class(PingPong::Processes, Class::Process, Class::Thread, ProbeKind::TpBtf);
}

/// The highest switch rate this machine reaches: pinned ping-pongs on both
/// CPUs at once (threads on one, processes on the other). Counts still
/// match the kernel's, per CPU.
#[test]
fn both_cpus_at_full_rate() {
    let mut probes = attach();
    let before = probes.snapshot().unwrap();
    let started = std::time::Instant::now();
    let threads = std::thread::spawn(|| workload::run(&Spec::new(PingPong::Threads, 0, ROUND_TRIPS)).unwrap());
    let procs = workload::run(&Spec::new(PingPong::Processes, 1, ROUND_TRIPS)).unwrap();
    let threads = threads.join().unwrap();
    let elapsed = started.elapsed();
    let delta = probes.snapshot().unwrap().since(&before);
    let total = delta.counts().by_class.iter().flatten().sum::<u64>();
    eprintln!(
        "{total} switches in {elapsed:?} ({:.0}/s) with all metrics",
        total as f64 / elapsed.as_secs_f64()
    );
    for (cpu, class, outcome) in [(0, Class::Thread, threads), (1, Class::Process, procs)] {
        let seen = delta.cpu_switches(cpu, class);
        assert!(
            seen as f64 >= 0.99 * outcome.switches() as f64,
            "CPU {cpu}: {seen} of {}",
            outcome.switches()
        );
        assert!(
            seen as f64 <= 1.01 * outcome.switches() as f64 + 200.0,
            "CPU {cpu}: {seen} vs {}",
            outcome.switches()
        );
    }
}

/// Threads whose ids are beyond the stamp array keep their stamps in task
/// storage: with one slot, every workload thread does, and `tracer check`'s
/// comparisons with the kernel's accounting still pass. With the live tests'
/// 100,000 round trips: at `tracer check`'s 20,000 (~50 ms a ping-pong) a
/// ~1.6 ms start or exit of the child process put the totals 3.3 % over once.
#[test]
fn off_cpu_times_beyond_the_array_use_task_storage() {
    let options = tracer::check::Options {
        round_trips: ROUND_TRIPS,
        cpu: workload_cpu(),
        probes: vec![ProbeKind::TpBtf],
        offcpu_slots: Some(1),
    };
    let check = tracer::check::run(&options, |_| {}).unwrap();
    let table = tracer::check::table(&check);
    eprintln!("{table}");
    assert!(table.contains("offcpu_ns total"), "off-CPU time was not checked");
    assert!(check.pass, "tracer check failed with one off-CPU slot");
}
