//! What one guest reported, and whether it passed: the checks with and
//! without BTF, `--cgroup` and `--per-process`.

use serde_json::Value;

/// What one guest reported.
pub(super) struct Outcome {
    pub(super) label: &'static str,
    pub(super) release: String,
    /// `tracer check --json` with the kernel's BTF, and without it.
    pub(super) with_btf: Option<Value>,
    pub(super) without_btf: Option<Value>,
    /// The first line tracer printed when tracing without BTF.
    pub(super) no_btf_message: Option<String>,
    /// `--cgroup`: the process switches in its interval reports, and the
    /// kernel's counts of the ping-pong inside the cgroup and of the one
    /// outside.
    pub(super) cgroup: (Option<u64>, Option<Value>, Option<Value>),
    /// `--per-process` on a churn of short-lived processes: the JSON lines
    /// (the churn's counts and the report) with the kernel's BTF (tp_btf)
    /// and without it (tracepoint).
    pub(super) per_process: [Vec<Value>; 2],
    /// Why the guest run itself failed (no output, timeout).
    pub(super) error: Option<String>,
}

impl Outcome {
    /// `--cgroup`: process switches in its reports, and the kernel's counts
    /// of the ping-pong inside and of the one outside (0 where missing);
    /// `None` when the reports are missing.
    pub(super) fn cgroup_counts(&self) -> Option<(u64, u64, u64)> {
        let switches = |v: &Option<Value>| v.as_ref().and_then(|v| v["switches"].as_u64()).unwrap_or(0);
        Some((self.cgroup.0?, switches(&self.cgroup.1), switches(&self.cgroup.2)))
    }

    /// Tracing without BTF said why and that it fell back.
    pub(super) fn told_no_btf(&self) -> bool {
        self.no_btf_message
            .as_deref()
            .is_some_and(|m| m.contains("exposes no BTF") && m.contains("classic tracepoint"))
    }

    /// `--cgroup` kept the ping-pong inside and left the one outside out:
    /// the reports' process switches are >= 99 % of the inner one's and at
    /// most 1 % + 200 more (less than the outer one's would add). The
    /// problem, if any.
    pub(super) fn cgroup_problem(&self) -> Option<String> {
        let (Some((seen, inside, outside)), Some(_), Some(_)) = (self.cgroup_counts(), &self.cgroup.1, &self.cgroup.2)
        else {
            return Some("no result".into());
        };
        let (lo, hi) = (0.99 * inside as f64, 1.01 * inside as f64 + 200.0);
        if inside == 0 || outside == 0 {
            Some(format!(
                "a ping-pong did not run (inside {inside}, outside {outside} switches)"
            ))
        } else if (seen as f64) < lo || (seen as f64) > hi {
            Some(format!(
                "--cgroup counted {seen} process switches; the ping-pong inside made {inside}, the one outside {outside}"
            ))
        } else {
            None
        }
    }

    pub(super) fn pass(&self) -> bool {
        let passed = |v: &Option<Value>| v.as_ref().is_some_and(|v| v["pass"] == Value::Bool(true));
        self.error.is_none()
            && self.cgroup_problem().is_none()
            && self.per_process.iter().all(|lines| per_process_result(lines).is_ok())
            && passed(&self.with_btf)
            && passed(&self.without_btf)
            && self.told_no_btf()
    }
}

/// `--per-process` on a churn of short-lived processes (exited, so retired
/// from the kernel's table through the ring buffer the free program fills):
/// every child is in the report, no count was dropped, and the children's
/// switches out match the kernel's count, with one of slack per child.
/// (children, their switches out, the kernel's count), or the problem.
pub(super) fn per_process_result(lines: &[Value]) -> Result<(usize, u64, u64), String> {
    let truth = lines
        .iter()
        .find(|v| v.get("children").is_some())
        .ok_or("no churn result")?;
    let report = lines.iter().find(|v| v.get("processes").is_some()).ok_or("no report")?;
    let procs = report["processes"].as_array().cloned().unwrap_or_default();
    let children: Vec<u64> = truth["children"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let kernel = truth["children_switches"].as_u64().unwrap_or(0);
    let (mut out, mut missing) = (0, 0);
    for &child in &children {
        match procs.iter().find(|p| p["tgid"].as_u64() == Some(child)) {
            Some(p) => {
                out += ["thread", "process", "kernel", "idle"]
                    .iter()
                    .filter_map(|c| p["out"][c].as_u64())
                    .sum::<u64>();
            }
            None => missing += 1,
        }
    }
    let n = children.len();
    if n == 0 || missing > 0 {
        return Err(format!("{missing} of {n} exited processes missing from the report"));
    }
    if report["processes_dropped"].as_u64() != Some(0) {
        return Err(format!("processes_dropped {}", report["processes_dropped"]));
    }
    if out < kernel || out > kernel + n as u64 {
        return Err(format!("their switches out {out}, the kernel's count {kernel}"));
    }
    Ok((n, out, kernel))
}
