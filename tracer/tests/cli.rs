//! The command line without the kernel: help, version, bad input.

use assert_cmd::Command;
use predicates::prelude::*;

fn tracer() -> Command {
    Command::cargo_bin("tracer").unwrap()
}

#[test]
fn help_explains_classes_and_switch_cost() {
    tracer()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "thread   both tasks belong to the same process",
        ))
        .stdout(predicate::str::contains("switch_cost_ns"))
        .stdout(predicate::str::contains("--duration"))
        .stdout(predicate::str::contains("--interval"))
        .stdout(predicate::str::contains("--json"));
}

#[test]
fn version() {
    tracer()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("tracer "));
}

fn rejects(args: &[&str], message: &str) {
    let out = tracer().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_input_is_one_clear_error() {
    rejects(&["-d", "soon"], "unknown unit `soon`");
    rejects(&["-d", "0"], "is zero");
    rejects(&["-d", "99999999999h"], "too long");
    rejects(&["-i", "1.2.3s"], "is not a duration");
    rejects(&["--bogus"], "unexpected argument '--bogus'");
    rejects(&["-d"], "a value is required");
}

/// Targets that do not exist are refused before anything is attached (so
/// also without root).
#[test]
fn missing_targets_are_refused_up_front() {
    for (args, message) in [
        (&["-p", "4000000000"][..], "no process with pid 4000000000"),
        (&["-t", "4000000000"][..], "no thread with tid 4000000000"),
        (&["--cpu", "4000"][..], "CPU 4000 does not exist"),
        (&["-c", "a-name-far-too-long"][..], "longer than the kernel's 15 bytes"),
    ] {
        let out = tracer().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    rejects(&["--cpu", "3-1"], "is not a CPU list");
    rejects(&["-m", "cost"], "unknown metric `cost`");
}
