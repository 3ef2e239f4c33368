//! `cargo xtask soak`: tracer under a long, high-rate load with task churn,
//! on every CPU. Samples tracer's RSS, CPU time and the memory of its maps
//! (memlock in the fdinfo of its BPF map descriptors) while it runs, then
//! checks that memory stayed flat, that the tracer process itself stayed
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

pub fn soak(tracer: &std::path::Path, seconds: u64) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "xtask: soak for {seconds} s: ping-pongs and churn pinned to each of CPUs 0-{}, all metrics, per process",
        cpus - 1
    );
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
    let pid = child.id();
    let stdout = child.stdout.take().context("no stdout")?;
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        let start = Instant::now();
        while let (Some(rss), Some(ticks)) = (rss_kib(pid), cpu_ticks(pid)) {
            samples.push((start.elapsed(), rss, map_memlock(pid), ticks));
            std::thread::sleep(Duration::from_secs(2));
        }
        samples
    });
    let (mut thread, mut process, mut all, mut loads) = (0u64, 0u64, 0u64, Vec::new());
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.contains("\"classes\"") {
            thread += json_u64(&line, "\"thread\":{\"switches\":").unwrap_or(0);
            process += json_u64(&line, "\"process\":{\"switches\":").unwrap_or(0);
            all += json_u64(&line, "\"switches\":").unwrap_or(0);
        } else if line.contains("\"rounds\"") {
            loads.push(line);
        }
    }
    let status = child.wait()?;
    let samples = sampler.join().map_err(|_| anyhow::anyhow!("sampler panicked"))?;
    if !status.success() {
        bail!("tracer failed: {status}");
    }
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

    // Memory: after a warm-up third, RSS and map memory must not grow.
    let warm = samples.len() / 3;
    let (Some(first), Some(last)) = (samples.get(warm), samples.last()) else {
        bail!("too few samples ({}) for a soak of {seconds} s", samples.len());
    };
    let max_rss = samples[warm..].iter().map(|s| s.1).max().unwrap_or(0);
    // The tracer's own CPU time after the warm-up, as a share of one core,
    // at the switch rate of the whole run (every switch on the machine is
    // in the interval reports' totals).
    let span = last.0.saturating_sub(first.0).as_secs_f64();
    let cpu_share = (last.3 - first.3) as f64 / ticks_per_second() as f64 / span.max(1e-9);
    let rate = all as f64 / seconds as f64;
    eprintln!(
        "xtask: {rate:.0} switches/s on the machine; tracer used {:.2} % of a core after warm-up ({} ticks in {span:.0} s)",
        cpu_share * 100.0,
        last.3 - first.3
    );
    eprintln!(
        "xtask: {} samples; RSS {} KiB after warm-up, {} KiB at the end, {} KiB at most; map memlock {} -> {} bytes",
        samples.len(),
        first.1,
        last.1,
        max_rss,
        first.2,
        last.2
    );
    eprintln!(
        "xtask: traced thread switches {thread} (kernel {truth_thread}), process {process} (kernel {truth_process})"
    );
    let mut problems = Vec::new();
    if max_rss > first.1 + first.1 / 10 + 2048 {
        problems.push(format!("RSS grew from {} to {max_rss} KiB", first.1));
    }
    if max_rss > MAX_RSS_KIB {
        problems.push(format!("RSS reached {max_rss} KiB (limit {MAX_RSS_KIB} KiB)"));
    }
    if cpu_share > MAX_CPU_SHARE {
        problems.push(format!(
            "the tracer used {:.2} % of a core (limit {:.0} %) at {rate:.0} switches/s",
            cpu_share * 100.0,
            MAX_CPU_SHARE * 100.0
        ));
    }
    if last.2 != first.2 {
        problems.push(format!("map memory changed from {} to {} bytes", first.2, last.2));
    }
    // The load's own ping-pongs are a lower bound: the churn adds more.
    // Nothing may be lost (thread + process). Per class, other tasks on the
    // load's CPU turn some of the thread ping-pong's switches into process
    // switches (thread A -> other process -> thread B): 5 % of slack there.
    let (traced, truth) = (thread + process, truth_thread + truth_process);
    if (traced as f64) < 0.99 * truth as f64 {
        problems.push(format!(
            "switches of the load are missing from the reports: {traced} traced, {truth} by the kernel"
        ));
    }
    if (thread as f64) < 0.95 * truth_thread as f64 {
        problems.push(format!(
            "thread switches of the load are missing or misclassified: {thread} traced, {truth_thread} by the kernel"
        ));
    }
    if !problems.is_empty() {
        bail!("soak failed: {}", problems.join("; "));
    }
    eprintln!("xtask: soak passed");
    Ok(())
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
