//! Running the tracer binary and reading its reports.

use crate::*;

/// Kills the child if a test fails before it ends, so no tracer outlives its test.
pub(crate) struct Reaper(pub(crate) Child);

impl Reaper {
    /// Reads the child's stdout to its end, then waits for it.
    pub(crate) fn finish(&mut self) -> (std::process::ExitStatus, String) {
        let mut stdout = String::new();
        if let Some(out) = self.0.stdout.as_mut() {
            std::io::Read::read_to_string(out, &mut stdout).unwrap();
        }
        (self.0.wait().unwrap(), stdout)
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn tracer_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracer"))
}

/// Starts tracer with `args` and its stdout piped; killed and reaped on drop.
pub(crate) fn spawn_tracer<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Reaper {
    Reaper(tracer_cmd().args(args).stdout(Stdio::piped()).spawn().unwrap())
}

pub(crate) fn parse_report(line: &str) -> Value {
    let v = parse_report_any_probe(line);
    assert_eq!(v["probe"], "tp_btf");
    v
}

/// Checks a JSON report's internal consistency, whichever probe made it.
pub(crate) fn parse_report_any_probe(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let classes = ["thread", "process", "kernel", "idle"];
    let sum: u64 = classes
        .iter()
        .map(|c| v["classes"][c]["switches"].as_u64().unwrap())
        .sum();
    assert_eq!(
        v["switches"].as_u64().unwrap(),
        sum,
        "switches is the sum of the classes: {line}"
    );
    for c in classes {
        let class = &v["classes"][c];
        let (vol, pre) = (
            class["voluntary"].as_u64().unwrap(),
            class["preempted"].as_u64().unwrap(),
        );
        assert_eq!(
            vol + pre,
            class["switches"].as_u64().unwrap(),
            "{c}: voluntary + preempted: {line}"
        );
    }
    assert_eq!(v["kernel_release"].as_str().unwrap(), tracer::kernel::release());
    v
}

/// JSON lines printed by `tracer ping-pong` (ground truth) and the report.
pub(crate) fn split_output(stdout: &str) -> (Vec<Value>, Value) {
    let mut helpers = Vec::new();
    let mut report = None;
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v.get("classes").is_some() {
            report = Some(v);
        } else {
            helpers.push(v);
        }
    }
    (helpers, report.unwrap_or_else(|| panic!("no report in: {stdout}")))
}

/// Runs `tracer --json --per-process <args>` to its end (`args` ends with
/// `-- COMMAND`); returns the helpers' JSON lines and the report.
pub(crate) fn per_process_run(args: &[&str]) -> (Vec<Value>, Value) {
    let out = tracer_cmd()
        .args(["--json", "--per-process"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    split_output(&String::from_utf8(out.stdout).unwrap())
}

pub(crate) fn processes(report: &Value) -> Vec<Value> {
    report["processes"].as_array().expect("processes").clone()
}

/// The per-process row of `tgid`, if the report has it.
pub(crate) fn process_entry(procs: &[Value], tgid: u64) -> Option<&Value> {
    procs.iter().find(|p| p["tgid"].as_u64() == Some(tgid))
}

/// A per-process row's switches out, over every class.
pub(crate) fn switches_out(entry: &Value) -> u64 {
    ["thread", "process", "kernel", "idle"]
        .iter()
        .map(|c| entry["out"][c].as_u64().unwrap())
        .sum()
}

pub(crate) fn class_switches(report: &Value, class: &str) -> u64 {
    report["classes"][class]["switches"].as_u64().unwrap()
}
