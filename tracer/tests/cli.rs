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
