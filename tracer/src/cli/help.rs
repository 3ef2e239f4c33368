//! The texts of `tracer --help` beyond the flags' own.

pub(super) const ABOUT: &str = "Watch real context switches with eBPF and show what they cost.";

pub(super) const LONG_ABOUT: &str = "\
Watch real context switches with eBPF and show what they cost.

Every switch (one CPU stops running `prev` and starts running `next`) is
counted once, in the kernel, in exactly one class, first match wins:
  idle     prev or next is the CPU's idle task
  kernel   prev or next is a kernel thread (PF_KTHREAD)
  thread   both tasks belong to the same process (same tgid): no address-space switch
  process  different processes: an address-space switch

Each switch is also voluntary (prev blocked) or preempted, split exactly as the
kernel splits its own nvcsw/nivcsw counters.

Latencies, per class (--metrics), each belonging to the class of the switch
that ends it:
  switch_cost_ns   from sched_switch, as prev leaves, until the incoming task
                   runs again on the same CPU (sched_exit_tp, Linux 6.16+).
                   Includes what the tracer's own two probes run between
                   their timestamps (the end of one, the start of the other).
  runq_latency_ns  from the moment the task became runnable (woken: sched_waking,
                   or sched_wakeup_new; or switched out still runnable) until
                   it is switched in: waiting for a CPU (perf sched timehist's
                   'sch delay'; runqlat starts later for a wakeup onto an idle
                   CPU, once that CPU has left idle)
  offcpu_ns        from a task's last switch-out until its switch-in
  oncpu_ns         from a task's switch-in until its switch-out (its slice)
A latency this kernel cannot give is reported as unavailable, never as zero.

Traces the whole system until Ctrl-C (or --duration), then prints a report.
Needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  sudo tracer                 trace until Ctrl-C, then print the report
  sudo tracer -d 10s          trace for 10 seconds
  sudo tracer -i 1s --json    one JSON object per second, one per line
  sudo tracer -m none         only classify and count (one probe, least overhead)
  sudo tracer -p 1234 --per-process -d 30s
                              one application, with a table per process
  sudo tracer -- make -j2     trace a command's process tree until it exits
  sudo tracer --prometheus 9464
                              serve /metrics on 127.0.0.1:9464 until stopped
  sudo tracer -i 10s --hdr-log run.hlog --plot run.svg -d 1m
                              HdrHistogram log per 10 s, percentile plot at the end

Exit status: 0 on success (also after Ctrl-C or SIGTERM), 1 when tracing could
not start or failed, 2 for invalid arguments.";
