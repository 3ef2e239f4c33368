//! The kernel's own account of BPF program time: run-time statistics
//! (`BPF_ENABLE_STATS`), read for every loaded program from the kernel's
//! program listing, so that the peers' programs are measured like tracer's.
//! Both come from tracer's hidden `bpf-stats` command (the kernel interface
//! is aya's, which needs a newer compiler than xtask's).

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use anyhow::{Context as _, bail};

/// Runs and run time of one program so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prog {
    pub name: String,
    pub runs: u64,
    pub run_ns: u64,
}

/// Every loaded program by id, and the kernel's switch count read with them.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub programs: BTreeMap<u64, Prog>,
    pub ctxt: u64,
}

/// Statistics on while this lives (they cost each program run two clock
/// reads, so they are off during the wall-clock runs).
pub struct StatsOn {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl StatsOn {
    pub fn start(tracer: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(tracer)
            .arg("bpf-stats")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting `tracer bpf-stats`")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("bpf-stats stdout")?);
        let mut on = StatsOn { child, stdin, stdout };
        // The first answer says that statistics are on.
        on.listing()?;
        Ok(on)
    }

    /// The kernel's program listing now.
    pub fn listing(&mut self) -> anyhow::Result<Listing> {
        let stdin = self.stdin.as_mut().context("bpf-stats closed")?;
        stdin
            .write_all(b"\n")
            .and_then(|()| stdin.flush())
            .context("asking bpf-stats")?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line).context("reading bpf-stats")? == 0 {
            bail!("`tracer bpf-stats` exited: {:?}", self.child.wait());
        }
        parse(&line)
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        // Closing its stdin ends it, and turns statistics off.
        self.stdin = None;
        let _ = self.child.wait();
    }
}

fn parse(line: &str) -> anyhow::Result<Listing> {
    let v: serde_json::Value = serde_json::from_str(line).context("bpf-stats JSON")?;
    let mut out = Listing {
        ctxt: v["ctxt"].as_u64().context("bpf-stats without ctxt")?,
        ..Listing::default()
    };
    for p in v["programs"].as_array().context("bpf-stats without programs")? {
        let n = |k: &str| p[k].as_u64().with_context(|| format!("bpf-stats program without {k}"));
        let prog = Prog {
            name: p["name"].as_str().unwrap_or("?").to_owned(),
            runs: n("runs")?,
            run_ns: n("run_ns")?,
        };
        out.programs.insert(n("id")?, prog);
    }
    Ok(out)
}

/// What the programs that are in `after` but not in `existing` (those
/// loaded by the variant) did between `before` and `after`.
pub fn added(existing: &Listing, before: &Listing, after: &Listing) -> Vec<Prog> {
    after
        .programs
        .iter()
        .filter(|(id, _)| !existing.programs.contains_key(id))
        .map(|(id, a)| {
            let b = before.programs.get(id).cloned().unwrap_or_default();
            Prog {
                name: a.name.clone(),
                runs: a.runs.saturating_sub(b.runs),
                run_ns: a.run_ns.saturating_sub(b.run_ns),
            }
        })
        .collect()
}

/// Whether a program loaded since `existing` has run in `now` (statistics
/// on): the variant is attached.
pub fn new_program_ran(existing: &Listing, now: &Listing) -> bool {
    now.programs
        .iter()
        .any(|(id, p)| !existing.programs.contains_key(id) && p.runs > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_variants_programs_and_only_the_span() {
        let existing = parse(r#"{"ctxt":1,"programs":[{"id":1,"name":"systemd","runs":5,"run_ns":50}]}"#).unwrap();
        let before = parse(
            r#"{"ctxt":2,"programs":[{"id":1,"name":"systemd","runs":5,"run_ns":50},
            {"id":7,"name":"sched_switch","runs":10,"run_ns":1000}]}"#,
        )
        .unwrap();
        let after = parse(
            r#"{"ctxt":30,"programs":[{"id":1,"name":"systemd","runs":9,"run_ns":90},
            {"id":7,"name":"sched_switch","runs":30,"run_ns":3000},{"id":8,"name":"late","runs":2,"run_ns":20}]}"#,
        )
        .unwrap();
        let prog = |name: &str, runs, run_ns| Prog {
            name: name.into(),
            runs,
            run_ns,
        };
        assert_eq!(
            added(&existing, &before, &after),
            vec![prog("sched_switch", 20, 2000), prog("late", 2, 20)]
        );
        assert!(new_program_ran(&existing, &after) && !new_program_ran(&after, &after));
        assert!(parse(r#"{"programs":[]}"#).is_err());
    }
}
