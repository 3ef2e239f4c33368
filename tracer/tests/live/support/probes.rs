//! Attaching the tracer in-process and checking what it saw of a workload.

use crate::*;

/// The CPU the workloads are pinned to: the last one, away from CPU 0's
/// housekeeping.
pub(crate) fn workload_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
}

pub(crate) fn attach() -> Probes {
    attach_with(ProbeKind::TpBtf)
}

pub(crate) fn attach_with(probe: ProbeKind) -> Probes {
    let probes = Probes::attach(ProbeOptions {
        metrics: MetricSet::ALL,
        probe,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("cannot attach: {e}"));
    for (metric, why) in &probes.unavailable {
        // Only switch cost can be missing (before Linux 6.16).
        eprintln!("skipping checks of {}: {why}", metric.key());
    }
    probes
}

/// Runs `kind` under the tracer (tracing this process tree, as `tracer check`
/// does); returns what the kernel counted and what the tracer saw on the
/// workload's CPU over the same span.
pub(crate) fn traced(kind: PingPong, probe: ProbeKind) -> (Outcome, Snapshot, Probes) {
    let mut probes = tracer::check::attach(probe, None).unwrap_or_else(|e| panic!("cannot attach: {e}"));
    let cpus = [workload_cpu()];
    let before = probes.snapshot_cpus(Some(&cpus)).unwrap();
    let outcome = workload::run(&Spec::new(kind, workload_cpu(), ROUND_TRIPS)).unwrap();
    let after = probes.snapshot_cpus(Some(&cpus)).unwrap();
    (outcome, after.since(&before), probes)
}

/// Checks that the workload's switches land in `expected` and agree with the
/// kernel's count, and each latency with the kernel's own totals, with the
/// margins `tracer check` states (`tracer::check::compare`).
pub(crate) fn check_class(kind: PingPong, expected: Class, other: Class, probe: ProbeKind) {
    let (outcome, delta, probes) = traced(kind, probe);
    let options = tracer::check::Options {
        round_trips: ROUND_TRIPS,
        cpu: workload_cpu(),
        probes: vec![probe],
        offcpu_slots: None,
    };
    let check = tracer::check::compare(kind, &options, &outcome, &delta, &probes);
    assert_eq!(check.class, expected.name());
    for item in &check.items {
        eprintln!(
            "{}: {} {:?} kernel {:?} (allowed {})",
            if item.pass { "ok" } else { "FAIL" },
            item.name,
            item.tracer,
            item.kernel,
            item.allowed
        );
    }
    // The other user class is among the comparisons, and each measured
    // latency has its sample count and its total (or p50) checked.
    assert!(
        check
            .items
            .iter()
            .any(|i| i.name == format!("{} switches", other.name()))
    );
    for m in probes.measured.iter() {
        assert!(check.items.iter().any(|i| i.name == format!("{} samples", m.key())));
    }
    assert!(check.pass(), "{}", check.failures().join("\n"));
    // Both probes measure the run-queue and off-CPU times.
    assert!(delta.latency(Metric::Offcpu).is_some() && delta.latency(Metric::Runq).is_some());
}

/// Ids of the loaded BPF programs named like ours (by id, so that programs of
/// another tracer instance coming and going do not confuse the count).
pub(crate) fn our_programs() -> BTreeSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| matches!(p.name_as_str(), Some("sched_switch" | "sched_exit")))
        .map(|p| p.id())
        .collect()
}

/// Waits (up to 2 s) until none of `ids` is loaded any more; the kernel frees
/// a program shortly after its last fd closes.
pub(crate) fn assert_unloaded(ids: &BTreeSet<u32>, what: &str) {
    for _ in 0..100 {
        if our_programs().is_disjoint(ids) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{what}: programs {:?} still loaded",
        our_programs().intersection(ids).collect::<Vec<_>>()
    );
}

/// Ids of loaded maps with our names.
pub(crate) fn our_maps() -> BTreeSet<u32> {
    aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter(|m| {
            matches!(
                m.name_as_str(),
                Some("CPU" | "HISTS" | "TGIDS" | "TIDS" | "CPUS" | "PROCS" | "COMMS" | "EXITED")
            )
        })
        .map(|m| m.id())
        .collect()
}

/// Samples of `metric` over every class, and the longest.
pub(crate) fn samples_and_max(delta: &Snapshot, metric: Metric) -> (u64, u64) {
    let hists = delta
        .latency(metric)
        .unwrap_or_else(|| panic!("{} is measured", metric.key()));
    let samples = hists.iter().map(|h| h.count()).sum();
    let max = hists
        .iter()
        .filter_map(|h| tracer::report::Latency::from_histogram(h).stats.map(|s| s.max))
        .max()
        .unwrap_or(0);
    (samples, max)
}
