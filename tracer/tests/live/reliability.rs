//! Faults, signals, leftovers, hostile input, and tracer's own cost.

use super::*;

#[test]
fn programs_detach_when_probes_drop() {
    let before = our_programs();
    let probes = attach();
    let ours: BTreeSet<u32> = our_programs().difference(&before).copied().collect();
    assert_eq!(ours.len(), 2, "{NEEDS_ROOT}: expected our two programs, found {ours:?}");
    drop(probes);
    assert_unloaded(&ours, "after drop");
}

/// Ctrl-C and SIGTERM: detach, print the final report, exit 0; no program left.
#[test]
fn signals_end_with_a_final_report() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let before = our_programs();
        let mut child = spawn_tracer(["--json"]);
        std::thread::sleep(Duration::from_millis(1500));
        let ours: BTreeSet<u32> = our_programs().difference(&before).copied().collect();
        assert_eq!(ours.len(), 2, "tracer did not attach: {ours:?}");
        // SAFETY: sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(child.0.id() as i32, signal) }, 0);
        let (status, stdout) = child.finish();
        assert!(status.success(), "signal {signal}: exit {status:?}");
        let v = parse_report(stdout.trim());
        assert!(v["duration_ns"].as_u64().unwrap() >= 1_000_000_000);
        assert!(v["switches"].as_u64().unwrap() > 0);
        assert_unloaded(&ours, "after the signal");
    }
}

/// Without privileges: one clear line, exit 1, no panic.
#[test]
fn unprivileged_gets_one_clear_line() {
    // Drop to `nobody` with no capabilities at all.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_tracer"))
        .args(["-d", "1s"])
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("CAP_BPF") && lines[0].contains("sudo"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

/// A kernel without BTF (simulated by hiding /sys/kernel/btf in a private
/// mount namespace): one clear line naming what is missing.
#[test]
fn missing_btf_falls_back_or_says_what_is_missing() {
    let hidden = |args: &str| {
        let script = format!(
            "mount -t tmpfs none /sys/kernel/btf && exec {} {args}",
            env!("CARGO_BIN_EXE_tracer")
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap()
    };
    // By default: one line saying what is missing and what is used instead.
    let out = hidden("--json -d 1s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("/sys/kernel/btf/vmlinux"))
        .collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains("CONFIG_DEBUG_INFO_BTF") && notes[0].contains("tracepoint probe"),
        "{stderr}"
    );
    // Every latency is measured by the tracepoint probe too.
    assert!(!stderr.contains("unavailable"), "{stderr}");
    let v = parse_report_any_probe(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(v["probe"], "tracepoint");
    for metric in ["runq_latency_ns", "offcpu_ns", "oncpu_ns"] {
        assert!(
            v["classes"]["idle"][metric]["count"].as_u64().is_some(),
            "{metric}: {v}"
        );
    }
    // Asking for tp_btf: one clear line, exit 1.
    let out = hidden("--probe tp_btf -d 1s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("/sys/kernel/btf/vmlinux") && lines[0].contains("CONFIG_DEBUG_INFO_BTF"),
        "{stderr}"
    );
}

/// SIGKILL: the kernel drops everything tracer had loaded (programs, links,
/// maps are all file descriptors), and the next start works.
#[test]
fn sigkill_leaves_nothing_behind() {
    let (progs_before, maps_before) = (our_programs(), our_maps());
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "--per-process"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let progs: BTreeSet<u32> = our_programs().difference(&progs_before).copied().collect();
    let maps: BTreeSet<u32> = our_maps().difference(&maps_before).copied().collect();
    assert!(
        progs.len() >= 2 && maps.len() >= 5,
        "did not attach: {progs:?} {maps:?}"
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_unloaded(&progs, "after SIGKILL");
    for _ in 0..100 {
        if our_maps().is_disjoint(&maps) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        our_maps().is_disjoint(&maps),
        "maps left after SIGKILL: {:?}",
        our_maps().intersection(&maps)
    );
    let again = tracer_cmd().args(["--json", "-d", "500ms"]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    parse_report(String::from_utf8(again.stdout).unwrap().trim());
}

/// Two tracers at once: each has its own programs and maps, and both count
/// the same workload correctly.
#[test]
fn two_instances_both_count_correctly() {
    let start = || spawn_tracer(["--json", "-d", "4s"]);
    let (mut a, mut b) = (start(), start());
    std::thread::sleep(Duration::from_millis(1500));
    let truth = workload::run(&Spec::new(PingPong::Threads, workload_cpu(), ROUND_TRIPS))
        .unwrap()
        .switches();
    for t in [&mut a, &mut b] {
        let (status, s) = t.finish();
        assert!(status.success());
        let thread = class_switches(&parse_report(s.trim()), "thread");
        eprintln!("instance: thread {thread}, kernel {truth}");
        assert!(thread as f64 >= 0.99 * truth as f64 && (thread as f64) <= 1.05 * truth as f64 + 2000.0);
    }
}

/// `tracer --json -i ... | head -1`: tracer ends quietly when the reader goes.
#[test]
fn closed_pipe_ends_quietly() {
    let mut child = Reaper(
        tracer_cmd()
            .args(["--json", "-i", "200ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    parse_report(first.trim());
    // The reader is gone now: the next report hits a closed pipe.
    let status = child.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Process names with control characters or invalid UTF-8 are escaped in
/// the human report and valid in JSON.
#[test]
fn hostile_process_names_are_escaped() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = std::env::temp_dir().join(format!("tracer-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // exec sets the task name from the file name (first 15 bytes).
    let name: &[u8] = b"\x1b[2J\xffevil\nx";
    let link = dir.join(std::ffi::OsStr::from_bytes(name));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/bin/sleep", &link).unwrap();
    let run = |json: bool| {
        let mut cmd = tracer_cmd();
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .args(["--per-process", "-m", "none", "--"])
            .arg(&link)
            .arg("0.2")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let human = run(false);
    assert!(
        !human.contains(&0x1b) && !human.contains(&0xff),
        "raw control bytes in the report"
    );
    let text = String::from_utf8(human).unwrap();
    assert!(text.contains("\\x1b[2J\\xffevil\\x0ax"), "{text}");
    let json = String::from_utf8(run(true)).expect("JSON output is UTF-8");
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    let procs = processes(&v);
    let comms: Vec<&str> = procs.iter().map(|p| p["comm"].as_str().unwrap()).collect();
    assert!(comms.contains(&"\u{1b}[2J\u{fffd}evil\nx"), "{comms:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--self-stats`: every attached program with its runs and mean run time,
/// tracer's own CPU time and RSS, and its maps' kernel memory.
#[test]
fn self_stats_report_the_programs() {
    let mut child = spawn_tracer(["--json", "--self-stats", "-d", "3s"]);
    std::thread::sleep(Duration::from_millis(1200));
    let truth = workload::run(&Spec::new(PingPong::Threads, workload_cpu(), 20_000))
        .unwrap()
        .switches();
    let (status, s) = child.finish();
    assert!(status.success());
    let v = parse_report(s.trim());
    let own = &v["self"];
    let programs = own["programs"].as_array().unwrap();
    let names: Vec<&str> = programs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for want in ["sched_switch", "sched_exit", "sched_waking", "sched_wakeup_new"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let switch = programs.iter().find(|p| p["name"] == "sched_switch").unwrap();
    // It ran once per switch, system-wide: at least the workload's.
    assert!(switch["runs"].as_u64().unwrap() >= truth, "{switch}");
    // One run per switch. The run count and the switch counters are read a
    // moment apart while the machine runs on: a few switches of slack.
    let (runs, switches) = (switch["runs"].as_u64().unwrap(), v["switches"].as_u64().unwrap());
    assert!(
        runs.abs_diff(switches) <= 20 + switches / 1000,
        "one run per switch: {runs} runs, {switches} switches"
    );
    assert!(switch["mean_ns"].as_u64().unwrap() > 0);
    assert!(own["user_cpu_ns"].as_u64().unwrap() > 0 && own["rss_bytes"].as_u64().unwrap() > 1 << 20);
    // The histograms: 16 of 7,944 bytes per possible CPU, as one array that
    // the kernel rounds up to whole pages.
    let maps = own["maps"].as_array().unwrap();
    let memlock = |name: &str| {
        let m = maps.iter().find(|m| m["name"] == name);
        m.and_then(|m| m["memlock_bytes"].as_u64())
            .unwrap_or_else(|| panic!("no {name} in {maps:?}"))
    };
    let data = possible_cpus() as u64 * 16 * 7944;
    let hists = memlock(names::map::HISTS);
    assert!(
        hists >= data && hists <= data + 3 * 4096,
        "HISTS {hists} B for {data} B of histograms"
    );
    assert!(
        memlock(names::map::CPU) > 0 && memlock(names::map::TID_TIMES) > 0,
        "{maps:?}"
    );
}

/// Possible CPUs, from /sys (as the kernel sizes per-CPU maps).
fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// A reused thread id is never classified by the task it once was. A thread
/// ping-pong in another process leaves tids X and X+1 behind; the next pid
/// is then set to X (`/proc/sys/kernel/ns_last_pid`, root only) and a
/// process ping-pong here forks its child (pid X) and starts its thread
/// (likely X+1). Classified by the old owners, those switches would be
/// thread switches (both tids were one process); they must be process
/// switches, with both probes. Retried when another fork takes the ids.
/// Runs a thread ping-pong that exits, waits `gap`, then a process ping-pong
/// of 20,000 round trips whose thread and child get exactly the two thread
/// ids the first one's threads had (through ns_last_pid). Retried when
/// another fork takes the ids. Returns the second run and what `probes` saw
/// meanwhile on `cpus` (all when `None`).
fn ping_pong_on_reused_tids(
    probes: &mut Probes,
    label: &str,
    gap: Duration,
    cpus: Option<&[usize]>,
) -> (Outcome, Snapshot) {
    let cpu = workload_cpu();
    for attempt in 1..=20 {
        // The old owner: a process whose two threads switch with each
        // other (so the tracer knows them), then exit.
        let old = Command::new(env!("CARGO_BIN_EXE_tracer"))
            .args(["ping-pong", "--kind", "threads", "--round-trips", "1000"])
            .args(["--cpu", &cpu.to_string()])
            .output()
            .unwrap();
        assert!(old.status.success());
        let old: Value = serde_json::from_slice(&old.stdout).unwrap();
        let old_tids: Vec<u32> = old["tids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        std::thread::sleep(gap);
        let first = *old_tids.iter().min().unwrap();
        std::fs::write("/proc/sys/kernel/ns_last_pid", (first - 1).to_string()).unwrap();
        let before = probes.snapshot_cpus(cpus).unwrap();
        let outcome = workload::run(&Spec::new(PingPong::Processes, cpu, 20_000)).unwrap();
        let delta = probes.snapshot_cpus(cpus).unwrap().since(&before);
        let new_ids = &outcome.tids;
        let reused = new_ids.iter().filter(|t| old_tids.contains(t)).count();
        eprintln!("{label} attempt {attempt}: old threads {old_tids:?}, new thread and child {new_ids:?}");
        if reused == 2 {
            return (outcome, delta);
        }
    }
    panic!("{label}: no attempt got both thread ids reused (other forks took them)");
}

/// A thread id reused by a new task is classified by the new task: its
/// switches, with both probes.
#[test]
fn reused_thread_ids_are_classified_by_their_new_task() {
    for probe in [ProbeKind::TpBtf, ProbeKind::Tracepoint] {
        let mut probes = attach_with(probe);
        let cpu = workload_cpu();
        let (outcome, delta) = ping_pong_on_reused_tids(&mut probes, probe.name(), Duration::ZERO, Some(&[cpu]));
        let truth = outcome.switches();
        let (process, thread) = (
            delta.cpu_switches(cpu, Class::Process),
            delta.cpu_switches(cpu, Class::Thread),
        );
        eprintln!(
            "{}: kernel {truth} switches; tracer process {process}, thread {thread}",
            probe.name()
        );
        assert!(
            process as f64 >= 0.99 * truth as f64,
            "{}: {process} process switches of {truth}",
            probe.name()
        );
        assert!(
            (thread as f64) < 0.01 * truth as f64,
            "{}: {thread} of {truth} switches classified by the tids' old process",
            probe.name()
        );
    }
}

/// Off-CPU times are kept by thread id: a task that gets the id of one that
/// exited must not inherit its last switch-out. The old threads exit, and
/// a second later their ids run a ping-pong: with the old stamp, the new
/// tasks' first switch-in (on whichever CPU) would be an off-CPU time of over
/// a second. Traces this process tree only, so that no other task's long
/// sleep counts; this test's own thread waits for the workload (~0.1 s).
#[test]
fn reused_thread_ids_do_not_inherit_an_off_cpu_time() {
    const GAP: Duration = Duration::from_secs(1);
    let mut probes = tracer::check::attach(ProbeKind::TpBtf, None).unwrap_or_else(|e| panic!("cannot attach: {e}"));
    let (outcome, delta) = ping_pong_on_reused_tids(&mut probes, "tp_btf", GAP, None);
    // Run-queue stamps live in the same slots: a new task must not inherit
    // those either.
    for metric in [Metric::Offcpu, Metric::Runq] {
        let (samples, max) = samples_and_max(&delta, metric);
        eprintln!(
            "{samples} {} samples for {} switches, longest {max} ns",
            metric.key(),
            outcome.switches()
        );
        assert!(samples as f64 >= 0.97 * outcome.switches() as f64, "{samples} samples");
        assert!(
            u128::from(max) < GAP.as_nanos(),
            "{} of {max} ns: a new task inherited the stamp of the thread that had its id",
            metric.key()
        );
    }
}
