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

/// `--label`, `--prometheus`, `--hdr-log`, `--plot`: bad values are usage
/// errors (2); an address in use, a missing directory or a planted symlink are
/// one line and exit 1, before anything is attached (so also without root).
#[test]
fn export_options_refuse_bad_input() {
    rejects(&["--prometheus", "1", "--label", "app"], "expected KEY=VALUE");
    rejects(
        &["--prometheus", "1", "--label", "9x=1"],
        "label name `9x` is not valid",
    );
    rejects(&["--prometheus", "1", "--label", "class=1"], "set by tracer itself");
    rejects(&["--prometheus", "1", "--label", "__x=1"], "reserved");
    rejects(&["--prometheus", "1", "--label", "a=\u{1b}[2J"], "control character");
    rejects(
        &["--prometheus", "1", "--label", "a=1", "--label", "a=2"],
        "--label a=... given more than once",
    );
    rejects(&["--label", "app=x"], "--prometheus");
    rejects(&["--prometheus", "localhost"], "is not an address to listen on");
    rejects(&["--prometheus", "127.0.0.1:70000"], "is not an address to listen on");

    let one_line_error = |args: &[&str], message: &str| {
        let out = tracer().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("tracer: ") && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    };
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    one_line_error(
        &["--prometheus", &addr, "-d", "1s"],
        &format!("cannot serve Prometheus metrics on {addr}: Address already in use"),
    );

    let dir = std::env::temp_dir().join(format!("tracer-cli-exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no-such-dir/x.hlog");
    one_line_error(&["--hdr-log", missing.to_str().unwrap(), "-d", "1s"], "cannot create");
    let target = dir.join("precious");
    std::fs::write(&target, "keep me").unwrap();
    for (i, flag) in ["--hdr-log", "--plot"].into_iter().enumerate() {
        let link = dir.join(format!("link{i}"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        one_line_error(
            &[flag, link.to_str().unwrap(), "-d", "1s"],
            "is a symbolic link; refusing to write through it",
        );
    }
    let link = dir.join("bench-link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    one_line_error(
        &["bench", "--runs", "1", "--plot", link.to_str().unwrap()],
        "is a symbolic link",
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}
