//! `cargo xtask soak`: tracer under a long, high-rate load with task churn,
//! on every CPU. Samples tracer's RSS, CPU time and the memory of its maps
//! (memlock in the fdinfo of its BPF map descriptors) while it runs, then
//! checks that memory stayed flat, that each tracer process itself stayed
//! cheap (under 1 % of a core, RSS under 64 MiB), and that the pinned
//! ping-pongs were counted like the kernel counted them.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU time a process has used (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesized name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The tracer process's own cost must stay under these (issue: "at 500 k
/// switches/s under 1 % of a core, RSS under 64 MiB").
const MAX_CPU_SHARE: f64 = 0.01;
const MAX_RSS_KIB: u64 = 64 * 1024;

/// Sum of `memlock` over the BPF map descriptors a process holds, in bytes.
fn map_memlock(pid: u32) -> u64 {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| fs::read_to_string(fd.path()).ok())
        .filter(|info| info.contains("map_type:"))
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("memlock:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// One tracer instance's samples: (time, RSS KiB, map memlock bytes, CPU ticks).
type Samples = Vec<(Duration, u64, u64, u64)>;

/// Samples a process every 2 s until it is gone.
fn sampler(pid: u32) -> std::thread::JoinHandle<Samples> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        let start = Instant::now();
        while let (Some(rss), Some(ticks)) = (rss_kib(pid), cpu_ticks(pid)) {
            samples.push((start.elapsed(), rss, map_memlock(pid), ticks));
            std::thread::sleep(Duration::from_secs(2));
        }
        samples
    })
}

/// Thread and process switches summed over a tracer's JSON interval lines;
/// other lines are returned as they are.
#[derive(Default)]
struct Totals {
    thread: u64,
    process: u64,
    all: u64,
    other_lines: Vec<String>,
}

fn read_reports(stdout: impl std::io::Read) -> std::io::Result<Totals> {
    let mut t = Totals::default();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.contains("\"classes\"") {
            t.thread += json_u64(&line, "\"thread\":{\"switches\":").unwrap_or(0);
            t.process += json_u64(&line, "\"process\":{\"switches\":").unwrap_or(0);
            t.all += json_u64(&line, "\"switches\":").unwrap_or(0);
        } else {
            t.other_lines.push(line);
        }
    }
    Ok(t)
}

/// Checks one instance's memory and own cost; returns the problems.
fn check_instance(name: &str, samples: &Samples, rate: f64) -> anyhow::Result<Vec<String>> {
    // After a warm-up third, RSS and map memory must not grow.
    let warm = samples.len() / 3;
    let (Some(first), Some(last)) = (samples.get(warm), samples.last()) else {
        bail!("{name}: too few samples ({})", samples.len());
    };
    let max_rss = samples[warm..].iter().map(|s| s.1).max().unwrap_or(0);
    // Its own CPU time after the warm-up, as a share of one core.
    let span = last.0.saturating_sub(first.0).as_secs_f64();
    let cpu_share = (last.3 - first.3) as f64 / ticks_per_second() as f64 / span.max(1e-9);
    eprintln!(
        "xtask: {name}: {:.2} % of a core after warm-up ({} ticks in {span:.0} s) at {rate:.0} switches/s; {} samples; RSS {} KiB after warm-up, {} KiB at the end, {max_rss} KiB at most; map memlock {} -> {} bytes",
        cpu_share * 100.0,
        last.3 - first.3,
        samples.len(),
        first.1,
        last.1,
        first.2,
        last.2
    );
    let mut problems = Vec::new();
    if max_rss > first.1 + first.1 / 10 + 2048 {
        problems.push(format!("{name}: RSS grew from {} to {max_rss} KiB", first.1));
    }
    if last.2 != first.2 {
        problems.push(format!(
            "{name}: map memory changed from {} to {} bytes",
            first.2, last.2
        ));
    }
    if max_rss > MAX_RSS_KIB {
        problems.push(format!("{name}: RSS reached {max_rss} KiB (limit {MAX_RSS_KIB} KiB)"));
    }
    if cpu_share > MAX_CPU_SHARE {
        problems.push(format!(
            "{name}: used {:.2} % of a core (limit {:.0} %) at {rate:.0} switches/s",
            cpu_share * 100.0,
            MAX_CPU_SHARE * 100.0
        ));
    }
    Ok(problems)
}

/// Two tracer instances watch the same load, both held to the cost limits:
/// the default one, system-wide, and one with `-- COMMAND --per-process` on
/// the load (per-process counts and names under churn: it retires exited
/// processes from the kernel's table every second, reads the live ones at
/// every interval, and keeps the exited ones in a table of its own, at most
/// 65,536 rows).
pub fn soak(tracer: &std::path::Path, seconds: u64) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "xtask: soak for {seconds} s: ping-pongs and churn pinned to each of CPUs 0-{}, all metrics; one tracer system-wide, one per process on the load",
        cpus - 1
    );
    // The default instance first; its first interval line says it traces.
    let mut plain = Command::new(tracer)
        .args(["--json", "-i", "1s"])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", tracer.display()))?;
    let plain_samples = sampler(plain.id());
    let mut plain_out = BufReader::new(plain.stdout.take().context("no stdout")?);
    let mut first_line = String::new();
    plain_out.read_line(&mut first_line)?;
    let plain_reader = std::thread::spawn(move || read_reports(plain_out));

    // One load per CPU, all in the traced command's tree.
    let load: Vec<String> = (0..cpus)
        .map(|cpu| format!("{} soak-load --seconds {seconds} --cpu {cpu} &", tracer.display()))
        .collect();
    let mut child = Command::new(tracer)
        .args(["--json", "-i", "5s", "--per-process", "--top", "5", "--", "sh", "-c"])
        .arg(format!("{} wait", load.join(" ")))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", tracer.display()))?;
    let samples = sampler(child.id());
    let per_process = read_reports(child.stdout.take().context("no stdout")?)?;
    let status = child.wait()?;
    // SAFETY: signals our own child.
    unsafe { libc::kill(plain.id() as i32, libc::SIGINT) };
    let plain_status = plain.wait()?;
    let plain_totals = plain_reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
    let samples = samples.join().map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    let plain_samples = plain_samples.join().map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    if !status.success() || !plain_status.success() {
        bail!("tracer failed: per process {status}, system-wide {plain_status}");
    }
    let loads: Vec<&String> = per_process
        .other_lines
        .iter()
        .filter(|l| l.contains("\"rounds\""))
        .collect();
    if loads.len() != cpus {
        bail!("{} of the {cpus} loads printed a summary", loads.len());
    }
    let sum = |key: &str| -> anyhow::Result<u64> {
        loads
            .iter()
            .map(|l| json_u64(l, key).with_context(|| key.to_owned()))
            .sum()
    };
    let truth_thread = sum("\"thread_switches\":")?;
    let truth_process = sum("\"process_switches\":")?;
    let rate = plain_totals.all as f64 / seconds as f64;

    let mut problems = check_instance("system-wide tracer", &plain_samples, rate)?;
    problems.extend(check_instance("per-process tracer", &samples, rate)?);
    // The load's own ping-pongs are a lower bound: the churn adds more.
    // Nothing may be lost (thread + process). Per class, other tasks on the
    // load's CPU turn some of the thread ping-pong's switches into process
    // switches (thread A -> other process -> thread B): 5 % of slack there.
    for (name, t) in [
        ("per-process tracer", &per_process),
        ("system-wide tracer", &plain_totals),
    ] {
        problems.extend(missing_switches(name, t, truth_thread, truth_process));
    }
    if !problems.is_empty() {
        bail!("soak failed: {}", problems.join("; "));
    }
    eprintln!("xtask: soak passed");
    Ok(())
}

/// What instance `name` lost of the load's switches, by the kernel's count
/// (`truth_thread`, `truth_process`).
fn missing_switches(name: &str, t: &Totals, truth_thread: u64, truth_process: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let truth = truth_thread + truth_process;
    eprintln!(
        "xtask: {name}: thread switches {} (load's ping-pongs {truth_thread}), process {} (load's {truth_process})",
        t.thread, t.process
    );
    if ((t.thread + t.process) as f64) < 0.99 * truth as f64 {
        problems.push(format!(
            "{name}: switches of the load are missing from the reports: {} traced, {truth} by the kernel",
            t.thread + t.process
        ));
    }
    if (t.thread as f64) < 0.95 * truth_thread as f64 {
        problems.push(format!(
            "{name}: thread switches of the load are missing or misclassified: {} traced, {truth_thread} by the kernel",
            t.thread
        ));
    }
    problems
}

/// The number right after `key` in a JSON line (enough for tracer's fixed keys).
pub fn json_u64(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())]
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_after_keys() {
        let line = r#"{"classes":{"thread":{"switches":42,"voluntary":1},"process":{"switches":7}}}"#;
        assert_eq!(json_u64(line, "\"thread\":{\"switches\":"), Some(42));
        assert_eq!(json_u64(line, "\"process\":{\"switches\":"), Some(7));
        assert_eq!(json_u64(line, "\"idle\":"), None);
    }
}
