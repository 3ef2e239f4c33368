//! `tracer bench --sweep`: a small matrix whose JSON is consistent with
//! itself, whose self-checks pass, and whose numbers behave as physics says.

use super::*;

/// Rings of 2 and 8 tasks, no working set and 256 KiB each: every cell has
/// both kinds with their checks passed; touching more memory never makes a
/// switch cheaper (beyond a 10 % margin for noise); the ratio columns are the
/// cells' own figures divided; the verdicts are there.
#[test]
fn sweep_json_is_consistent() {
    let out = tracer_cmd()
        .args([
            "bench",
            "--sweep",
            "--json",
            "--runs",
            "2",
            "--rings",
            "2,8",
            "--working-sets",
            "0,256K",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    let cells = v["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "{v}");
    let per_switch = |ring: u64, ws: u64, kind: &str| {
        let cell = cells
            .iter()
            .find(|c| c["ring"] == ring && c["working_set_bytes"] == ws)
            .unwrap_or_else(|| panic!("no cell {ring} x {ws}"));
        cell[kind]["per_switch_ns"].as_f64().unwrap()
    };
    for c in cells {
        let (ring, laps) = (c["ring"].as_u64().unwrap(), c["laps"].as_u64().unwrap());
        for kind in ["thread", "process"] {
            let k = &c[kind];
            assert_eq!(k["problems"].as_array().unwrap().len(), 0, "{c}");
            assert!(k["expected_class_share"].as_f64().unwrap() >= 0.99, "{c}");
            // A lap is one switch per task, two for one preempted by the task
            // it woke (the kernel's count, median run).
            let switches = k["switches"].as_u64().unwrap();
            assert!(switches + 1 >= ring * laps && switches <= 2 * ring * laps + 50, "{c}");
            let cost = &k["switch_cost_ns"];
            assert!(
                cost["p50"].as_u64().unwrap() > 0 && cost["p99"].as_u64() >= cost["p50"].as_u64(),
                "{c}"
            );
        }
        let ratio = c["process_over_thread"]["per_switch"].as_f64().unwrap();
        let own = c["process"]["per_switch_ns"].as_f64().unwrap() / c["thread"]["per_switch_ns"].as_f64().unwrap();
        assert!((ratio - own).abs() < 1e-9, "{c}");
    }
    for ring in [2, 8] {
        for kind in ["thread", "process"] {
            let (small, big) = (per_switch(ring, 0, kind), per_switch(ring, 256 << 10, kind));
            assert!(
                big >= 0.9 * small,
                "ring {ring} {kind}: {big} ns per switch with 256K, {small} without"
            );
        }
    }
    let verdicts = v["verdicts"].as_array().unwrap();
    assert!(verdicts.len() >= 4 && verdicts.iter().all(Value::is_string), "{v}");
}
