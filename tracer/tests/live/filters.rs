//! Filters and `-- COMMAND`: the wanted switches are there, the unwanted ones are not.

use super::*;

/// `-- COMMAND`: a shell that runs a thread ping-pong and a process ping-pong
/// (exec'd children of the shell, the second forking a child of its own) is
/// traced whole, while an unrelated process ping-pong runs beside it and is
/// left out. Per process, `out` matches the kernel's count for each helper.
#[test]
fn command_tree_is_traced_and_nothing_else() {
    let exe = env!("CARGO_BIN_EXE_tracer");
    let rt = 30_000u64;
    let script = format!(
        "{exe} ping-pong --kind threads --cpu 1 --round-trips {rt} && {exe} ping-pong --kind processes --cpu 1 --round-trips {rt}"
    );
    let noise = Noise::start();
    std::thread::sleep(Duration::from_millis(200));
    let (helpers, report) = per_process_run(&["--top", "1000", "-m", "none", "--", "sh", "-c", &script]);
    let noise_switches = noise.stop();
    assert_eq!(helpers.len(), 2, "{helpers:?}");
    let (threads, procs) = (&helpers[0], &helpers[1]);
    let truth_thread = threads["switches"].as_u64().unwrap();
    let truth_process = procs["switches"].as_u64().unwrap();
    let (thread, process) = (class_switches(&report, "thread"), class_switches(&report, "process"));
    eprintln!(
        "traced: thread {thread} (kernel {truth_thread}), process {process} (kernel {truth_process}); noise made {noise_switches} switches"
    );
    // Wanted: the command's tree, threads and exec'd/forked children alike.
    assert!(thread as f64 >= 0.99 * truth_thread as f64);
    assert!(process as f64 >= 0.99 * truth_process as f64);
    // Unwanted: the noise (process switches on CPU 0) must not be in it. It
    // made far more than the allowance while the command ran.
    assert!(noise_switches > 20_000, "the noise did not run: {noise_switches}");
    assert!(
        process as f64 <= 1.01 * truth_process as f64 + 2_000.0,
        "process {process}: unrelated switches got in (kernel counted {truth_process} for the command)"
    );

    let procs_list = processes(&report);
    let me = std::process::id() as u64;
    assert!(
        procs_list.iter().all(|p| p["tgid"].as_u64() != Some(me)),
        "the test process was traced"
    );
    for helper in &helpers {
        let tgid = helper["tgid"].as_u64().unwrap();
        let kernel = helper["process_switches"].as_u64().unwrap();
        let entry =
            process_entry(&procs_list, tgid).unwrap_or_else(|| panic!("helper {tgid} missing from {procs_list:?}"));
        let out_sum = switches_out(entry);
        // The kernel's count was read just before the helper printed and
        // exited; its last switches (printing, exiting threads) come after.
        assert!(
            out_sum >= kernel && out_sum <= kernel + 20,
            "process {tgid}: out {out_sum}, kernel counted {kernel}"
        );
        assert_eq!(entry["comm"], "tracer");
    }
    // The process ping-pong's forked child is in the tree too.
    assert!(
        procs_list.len() >= 4,
        "sh, two helpers and a forked child: {procs_list:?}"
    );
}

/// `--pid`: of two identical thread ping-pongs, only the named one is traced.
#[test]
fn pid_filter_keeps_one_process() {
    let helpers = TwoHelpers::start();
    let (wanted, unwanted) = (helpers.wanted.0.id(), helpers.unwanted.0.id());
    let run = helpers.run_under(&["--per-process", "-m", "none", "-p", &wanted.to_string()]);
    run.assert_only_wanted("--pid");
    let tgids: Vec<u64> = processes(&run.report)
        .iter()
        .map(|p| p["tgid"].as_u64().unwrap())
        .collect();
    assert!(tgids.contains(&u64::from(wanted)), "{tgids:?}");
    assert!(!tgids.contains(&u64::from(unwanted)), "{tgids:?}");
}

/// `--cpu` and `--comm`, through the library: the filter keeps a pinned
/// thread ping-pong when it selects it and drops it when it does not.
#[test]
fn cpu_and_comm_filters() {
    use tracer::probe::filter::Filter;
    let comm = {
        let c = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
        c.trim().to_owned()
    };
    let cases = [
        (
            "cpu 1",
            Filter::new(&[], &[], None, Some(&[1]), None, false).unwrap(),
            true,
        ),
        (
            "cpu 0",
            Filter::new(&[], &[], None, Some(&[0]), None, false).unwrap(),
            false,
        ),
        (
            "comm of the workload",
            Filter::new(&[], &[], Some(&comm), None, None, false).unwrap(),
            true,
        ),
        (
            "another comm",
            Filter::new(&[], &[], Some("no-such-task"), None, None, false).unwrap(),
            false,
        ),
    ];
    for (name, filter, wanted) in cases {
        let mut probes = Probes::attach(ProbeOptions {
            metrics: MetricSet::ALL,
            filter,
            probe: ProbeKind::TpBtf,
            ..Default::default()
        })
        .unwrap();
        let before = probes.snapshot().unwrap();
        // The workload threads inherit this thread's name.
        let outcome = workload::run(&Spec::new(PingPong::Threads, 1, 20_000)).unwrap();
        let delta = probes.snapshot().unwrap().since(&before);
        let thread: u64 = (0..delta.per_cpu_counts.len())
            .map(|cpu| delta.cpu_switches(cpu, Class::Thread))
            .sum();
        let truth = outcome.switches();
        eprintln!("{name}: thread {thread}, kernel {truth}");
        if wanted {
            assert!(thread as f64 >= 0.99 * truth as f64, "{name}: {thread} of {truth}");
            // Latencies of a filtered run still come out.
            assert!(delta.latency(Metric::Oncpu).unwrap()[Class::Thread.index()].count() > 0);
        } else {
            assert!(
                (thread as f64) < 0.01 * truth as f64,
                "{name}: {thread} of {truth} got through"
            );
        }
    }
}

/// Under sudo, `-- COMMAND` runs as the invoking user (SUDO_UID/SUDO_GID),
/// not as root, and its exit status becomes tracer's.
#[test]
fn command_runs_as_the_sudo_user_and_passes_its_status() {
    let out = tracer_cmd()
        .args(["--json", "-m", "none", "--", "sh", "-c", "id -u; id -g; exit 3"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .env("SUDO_USER", "nobody")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('{')).collect();
    assert_eq!(ids, ["65534", "65534"], "{stdout}");
    parse_report(stdout.lines().find(|l| l.starts_with('{')).unwrap());
}

/// `--cgroup`: a workload in a child cgroup of the named one is traced, an
/// identical one outside is not.
#[test]
fn cgroup_filter_keeps_the_subtree() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(mount) = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2").then(|| pre.split_whitespace().nth(4).map(str::to_owned))?
    }) else {
        eprintln!("skipped: this kernel has no cgroup v2 hierarchy mounted");
        return;
    };
    let cg = TestCgroup(std::path::Path::new(&mount).join(format!("tracer-test-{}", std::process::id())));
    std::fs::create_dir_all(cg.0.join("sub")).unwrap();
    let helpers = TwoHelpers::start();
    std::fs::write(cg.0.join("sub/cgroup.procs"), helpers.wanted.0.id().to_string()).unwrap();
    helpers
        .run_under(&["-m", "none", "--cgroup", cg.0.to_str().unwrap()])
        .assert_only_wanted("--cgroup");
}

/// Task churn under `-- COMMAND --per-process`: many short-lived threads and
/// processes. Every one of them is in the report, and per process `out`
/// matches the kernel's accounting, allowing one switch per exiting thread
/// (the kernel folds a thread's counters into its process before the
/// thread's last switch).
#[test]
fn churn_is_fully_accounted_per_process() {
    let exe = env!("CARGO_BIN_EXE_tracer");
    let (helpers, report) = per_process_run(&[
        "--top",
        "100000",
        "-m",
        "all",
        "--",
        exe,
        "churn",
        "--threads",
        "60",
        "--processes",
        "60",
    ]);
    parse_report(&report.to_string());
    let truth = &helpers[0];
    let procs = processes(&report);
    let out_of = |tgid: u64| process_entry(&procs, tgid).map(switches_out);
    let tgid = truth["tgid"].as_u64().unwrap();
    let threads = truth["threads"].as_u64().unwrap();
    let (seen, kernel) = (out_of(tgid).unwrap(), truth["self_switches"].as_u64().unwrap());
    eprintln!("churn parent: out {seen}, kernel {kernel}, {threads} threads exited");
    // Its own last switches (printing, exiting) come after the count: +20.
    assert!(
        seen >= kernel && seen <= kernel + threads + 20,
        "parent: out {seen}, kernel {kernel}"
    );
    let children: Vec<u64> = truth["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    let mut children_out = 0;
    for &child in &children {
        children_out += out_of(child).unwrap_or_else(|| panic!("child {child} missing from the report"));
    }
    let kernel_children = truth["children_switches"].as_u64().unwrap();
    eprintln!(
        "churn children: out {children_out}, kernel {kernel_children}, {} processes exited",
        children.len()
    );
    assert!(
        children_out >= kernel_children && children_out <= kernel_children + children.len() as u64,
        "children: out {children_out}, kernel {kernel_children}"
    );
    assert!(report["processes_dropped"].as_u64() == Some(0));
}

/// More processes come and go under `--per-process` than the kernel's table
/// has rows (`MAX_PROCS`): waves of short-lived processes, with both probes.
/// Each one that is gone leaves the kernel's table (retired into tracer's
/// table of exited processes), so none of their counts are dropped, and
/// every one of them is still in the report with `out` matching the
/// kernel's accounting. Without retirement the table fills after 16,384
/// processes: counts are dropped and the later processes are missing.
#[test]
fn exited_processes_leave_the_kernel_table_and_stay_in_the_report() {
    for probe in ["tp_btf", "tracepoint"] {
        waves_of_exited_processes(probe);
    }
}

fn waves_of_exited_processes(probe: &str) {
    const WAVES: usize = 10;
    const PER_WAVE: usize = 2_000;
    let exe = env!("CARGO_BIN_EXE_tracer");
    let script = format!("for i in $(seq {WAVES}); do {exe} churn --threads 0 --processes {PER_WAVE} || exit 1; done");
    let (helpers, report) = per_process_run(&[
        "--top", "1000000", "-m", "none", "--probe", probe, "--", "sh", "-c", &script,
    ]);
    assert_eq!(helpers.len(), WAVES, "{probe}: {helpers:?}");
    let procs = processes(&report);
    let by_tgid: std::collections::HashMap<u64, &Value> =
        procs.iter().map(|p| (p["tgid"].as_u64().unwrap(), p)).collect();
    let mut all_children = BTreeSet::new();
    let (mut missing, mut children_out, mut kernel_children) = (0, 0, 0);
    for wave in &helpers {
        let children = wave["children"].as_array().unwrap();
        assert_eq!(children.len(), PER_WAVE);
        let mut out = 0;
        for child in children {
            let tgid = child.as_u64().unwrap();
            assert!(
                all_children.insert(tgid),
                "{probe}: pid {tgid} was reused during the test"
            );
            match by_tgid.get(&tgid) {
                Some(entry) => {
                    out += switches_out(entry);
                    assert_eq!(entry["comm"], "tracer");
                }
                None => missing += 1,
            }
        }
        let kernel = wave["children_switches"].as_u64().unwrap();
        // One switch of slack per child, as in the churn test above.
        assert!(
            missing > 0 || (out >= kernel && out <= kernel + PER_WAVE as u64),
            "{probe}: wave {}: out {out}, kernel {kernel}",
            wave["tgid"]
        );
        children_out += out;
        kernel_children += kernel;
    }
    let dropped = report["processes_dropped"].as_u64().unwrap();
    eprintln!(
        "{probe}: {} processes exited: {missing} missing from the report, {dropped} counts dropped; children out {children_out}, kernel {kernel_children}; {} rows reported",
        all_children.len(),
        procs.len()
    );
    assert!(all_children.len() > tracer_common::bounds::MAX_PROCS as usize);
    assert_eq!(missing, 0, "{probe}: exited processes missing from the report");
    assert_eq!(
        dropped, 0,
        "{probe}: per-process counts dropped: the kernel's table filled up"
    );
}

/// `--tid`: naming one thread of a ping-pong traces every switch of the
/// pair (each involves it), and nothing of an identical pair beside it.
#[test]
fn tid_filter_keeps_one_thread() {
    use std::sync::{Arc, Barrier, mpsc};
    let go = Arc::new(Barrier::new(5)); // four workers and this thread
    let (tx, rx) = mpsc::channel();
    let (g1, t1) = (go.clone(), tx.clone());
    let wanted = std::thread::spawn(move || tid_ping_pong(1, 30_000, t1, g1));
    let wanted_tids = [rx.recv().unwrap(), rx.recv().unwrap()];
    let (g2, t2) = (go.clone(), tx);
    let unwanted = std::thread::spawn(move || tid_ping_pong(0, 30_000, t2, g2));
    let _ = [rx.recv().unwrap(), rx.recv().unwrap()];
    let filter = tracer::probe::filter::Filter::new(&[], &wanted_tids[..1], None, None, None, false).unwrap();
    let mut probes = Probes::attach(ProbeOptions {
        metrics: MetricSet::NONE,
        filter,
        probe: ProbeKind::TpBtf,
        ..Default::default()
    })
    .unwrap();
    let before = probes.snapshot().unwrap();
    go.wait();
    let (truth, other) = (wanted.join().unwrap(), unwanted.join().unwrap());
    let delta = probes.snapshot().unwrap().since(&before);
    let thread = delta.counts().by_class[Class::Thread.index()].iter().sum::<u64>();
    eprintln!("--tid: thread {thread}, wanted pair made {truth}, unwanted pair made {other}");
    assert!(thread as f64 >= 0.99 * truth as f64, "{thread} of {truth}");
    assert!(
        thread as f64 <= 1.01 * truth as f64 + 200.0,
        "unwanted got in: {thread} vs {truth}"
    );
}

/// `--per-process` names a process by its name after exec, with both probes:
/// a shell is counted under "sh" (it waits for `sleep`), then execs the
/// ping-pong helper in place, and the report must call it "tracer".
#[test]
fn exec_renames_the_process_with_both_probes() {
    let exe = env!("CARGO_BIN_EXE_tracer");
    let script = format!(
        "sleep 0.2; exec {exe} ping-pong --kind threads --cpu {} --round-trips 2000",
        workload_cpu()
    );
    for probe in ["tp_btf", "tracepoint"] {
        let (helpers, report) = per_process_run(&[
            "--top", "1000", "-m", "none", "--probe", probe, "--", "sh", "-c", &script,
        ]);
        let tgid = helpers[0]["tgid"].as_u64().unwrap();
        let procs_list = processes(&report);
        let entry = process_entry(&procs_list, tgid)
            .unwrap_or_else(|| panic!("{probe}: process {tgid} missing from {procs_list:?}"));
        eprintln!("{probe}: process {tgid} reported as {}", entry["comm"]);
        assert_eq!(entry["comm"], "tracer", "{probe}: the name before exec stuck");
    }
}
