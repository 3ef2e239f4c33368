//! The parser and the sample builder on a timehist excerpt: real rows of
//! this VM's perf 6.1 output (first part), and a made-up run whose expected
//! samples are worked out by hand (second part).

use super::*;

/// Captured here (`perf sched timehist -n --state` of a shell running
/// /bin/true under `perf sched record -a`), header included.
const CAPTURED: &str = "\
Samples do not have callchains.
           time    cpu  task name                       wait time  sch delay   run time  state
                        [tid/pid]                          (msec)     (msec)     (msec)       
--------------- ------  ------------------------------  ---------  ---------  ---------  -----
   14077.752874 [0000]  perf[5525]                          0.000      0.000      0.000      D  next: migration/0[18]         
   14077.755072 [0000]  rustc[5517/5515]                    0.000      0.000      2.187      R  next: coordinator[5539]       
   14077.771784 [0000]  sh[5534]                            0.029      0.006      0.003      S  next: true[5543]              
   14017.837508 [0000]  <idle>                              0.000      0.000      1.436      I  next: opt cgu.4[2046]         
";

#[test]
fn parses_captured_rows() {
    let t = parse(CAPTURED).unwrap();
    assert_eq!(t.rows.len(), 4);
    assert_eq!(t.lost, 0);
    let r = &t.rows[1];
    assert_eq!(
        (r.time_ns, r.cpu, r.comm.as_str(), r.tid, r.pid),
        (14_077_755_072_000, 0, "rustc", 5517, 5515)
    );
    assert_eq!(
        (r.wait_ns, r.delay_ns, r.run_ns, r.state.as_str(), r.next_tid),
        (0, 0, 2_187_000, "R", 5539)
    );
    let sh = &t.rows[2];
    assert_eq!(
        (sh.tid, sh.pid, sh.wait_ns, sh.delay_ns, sh.run_ns),
        (5534, 5534, 29_000, 6_000, 3_000)
    );
    let idle = &t.rows[3];
    assert_eq!(
        (idle.comm.as_str(), idle.tid, idle.pid, idle.next_tid),
        ("<idle>", 0, 0, 2046)
    );
}

#[test]
fn rejects_what_it_cannot_read() {
    let bad = "   14077.752874 [0000]  perf[5525]   0.000  0.000  next: x[1]\n";
    assert!(matches!(parse(bad), Err(PerfError::Parse { line_no: 1, .. })));
    assert_eq!(msec("1.5"), None);
    assert_eq!(msec("12.345"), Some(12_345_000));
}

/// Process 11 (threads 11 "app" and 12 "opt cgu.4"), another process 20,
/// a kernel thread 30; CPU 0 throughout, then one row on CPU 1 with no row
/// before it there, and a lost-events line.
const MADE_UP: &str = "\
     100.000100 [0000]  <idle>                              0.000      0.000      1.436      I  next: app[11]
     100.000200 [0000]  app[11]                             0.000      0.040      0.100      S  next: opt cgu.4[12]
     100.000300 [0000]  opt cgu.4[12/11]                    0.000      0.005      0.100      R  next: other[20]
     100.000350 [0000]  other[20]                           0.000      0.000      0.050      S  next: kworker/0:1[30]
     100.000400 [0000]  kworker/0:1[30]                     0.000      0.000      0.050      I  next: opt cgu.4[12]
     100.000500 [0000]  opt cgu.4[12/11]                    0.100      0.000      0.100      S  next: app[11]
     100.000600 [0000]  app[11]                             0.400      0.020      0.100      S  next: swapper/0[0]
     100.000700 [0001]  app[11]                             0.050      0.010      0.003      S  next: swapper/1[0]
     100.000800 lost 3 events on cpu 1
";

#[test]
fn samples_by_metric_and_class() {
    let t = parse(MADE_UP).unwrap();
    assert_eq!((t.rows.len(), t.lost), (8, 3));
    let s = samples(&t.rows, &BTreeSet::from([11]), &|_, comm| comm.starts_with("kworker/"));
    let us = |v: &[u64]| v.iter().map(|ns| ns / 1000).collect::<Vec<_>>();
    // Slices, in the class of the switch that ends them.
    assert_eq!(us(s.get(Metric::Oncpu, Class::Thread)), [100, 100]);
    assert_eq!(us(s.get(Metric::Oncpu, Class::Process)), [100]);
    assert_eq!(us(s.get(Metric::Oncpu, Class::Idle)), [100, 3]);
    // Off-CPU: none for a task's first row; in the class of the switch-in.
    assert_eq!(us(s.get(Metric::Offcpu, Class::Kernel)), [100]);
    assert_eq!(us(s.get(Metric::Offcpu, Class::Thread)), [400]);
    assert!(s.get(Metric::Offcpu, Class::Idle).is_empty());
    // Run queue: sch delay after a sleep (or for a first row), wait time
    // after a preemption (thread 12 left in state R; perf's sch delay is 0).
    assert_eq!(us(s.get(Metric::Runq, Class::Idle)), [40]);
    assert_eq!(us(s.get(Metric::Runq, Class::Thread)), [5, 20]);
    assert_eq!(us(s.get(Metric::Runq, Class::Kernel)), [100]);
    // The row on CPU 1 has no switch-in perf saw.
    assert_eq!((s.rows, s.broken), (5, 1));
}

#[test]
fn lost_counts() {
    assert_eq!(lost_count("Processed 123 events and lost 7 chunks!"), Some(7));
    assert_eq!(lost_count("no loss here"), None);
}
