//! A Prometheus server of its own scrapes the running tracer; promtool checks
//! the body.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
};

use tracer::export::prometheus;

use super::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 GET; returns the status code and the body.
fn http_get(addr: &str, target: &str, accept: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET {target} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_owned()))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server of its own, on loopback, scraping `target` every second.
struct Prometheus {
    addr: String,
    _process: Reaper,
    _dir: TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        ensure_package("/usr/bin/prometheus", "prometheus");
        let dir = TempDir::new("prometheus");
        let config = dir.0.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let process = Reaper(
            Command::new("/usr/bin/prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let started = std::time::Instant::now();
        while !matches!(http_get(&addr, "/-/ready", None), Ok((200, _))) {
            assert!(started.elapsed() < Duration::from_secs(60), "Prometheus not ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        Self {
            addr,
            _process: process,
            _dir: dir,
        }
    }

    /// `/api/v1/<endpoint>?<params>`: the `data.result` array.
    fn api(&self, endpoint: &str, params: &[(&str, &str)]) -> Vec<Value> {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect();
        let (code, body) = http_get(&self.addr, &format!("/api/v1/{endpoint}?{}", query.join("&")), None).unwrap();
        assert_eq!(code, 200, "{endpoint} {params:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"].as_array().unwrap().clone()
    }

    /// The value of an instant query that returns one series.
    fn scalar(&self, expr: &str) -> f64 {
        let result = self.api("query", &[("query", expr)]);
        assert_eq!(result.len(), 1, "{expr}: {result:?}");
        result[0]["value"][1].as_str().unwrap().parse().unwrap()
    }
}

/// A real Prometheus scrapes the running tracer (`-- COMMAND` on a thread
/// ping-pong, with `--label`): its `histogram_quantile(0.5, ...)` of the
/// thread class lies in the `le` bucket that holds tracer's own p50, its last
/// scrape has every switch of the final report, the counters never went
/// down, and `promtool check metrics` accepts the body.
#[test]
fn prometheus_scrapes_the_live_tracer() {
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let prom = Prometheus::start(&target);
    let start = std::time::SystemTime::now();
    // The workload; then the command says it is done and waits until the
    // test has seen Prometheus scrape the final totals (no fixed pause: a
    // busy machine delays Prometheus's first scrapes by seconds).
    let flags = TempDir::new("prometheus-flags");
    let (done, release) = (flags.0.join("done"), flags.0.join("release"));
    let script = format!(
        "{} ping-pong --kind threads --round-trips {ROUND_TRIPS} --cpu {} && touch {} && \
         i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done",
        env!("CARGO_BIN_EXE_tracer"),
        workload_cpu(),
        done.display(),
        release.display()
    );
    let mut tracer = spawn_tracer([
        "--json",
        "--prometheus",
        &target,
        "--label",
        "workload=ping pong \"1\"",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    check_the_body(&target);
    wait_for_the_final_scrapes(&prom, &done);
    std::fs::write(&release, "").unwrap();
    let (status, stdout) = tracer.finish();
    assert!(status.success(), "{status:?}");
    let (helpers, report) = split_output(&stdout);
    let report = parse_report(&report.to_string());
    let truth = helpers[0]["switches"].as_u64().unwrap();
    let thread = class_switches(&report, "thread");
    assert!(thread as f64 >= 0.99 * truth as f64, "thread {thread} of {truth}");
    let p50 = report["classes"]["thread"]["switch_cost_ns"]["p50"].as_u64().unwrap();
    check_the_last_scrape(&prom, thread, truth, p50);
    check_counters_only_grow(&prom, start);
}

/// The body, while tracer runs: valid for promtool, and in both formats.
fn check_the_body(target: &str) {
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok((200, b)) = http_get(target, "/metrics", None)
            && b.contains("tracer_switches_total{")
        {
            body = b;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!body.is_empty(), "no metrics from tracer");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let (code, open) = http_get(target, "/metrics", Some("application/openmetrics-text; version=1.0.0")).unwrap();
    assert_eq!(code, 200);
    assert!(open.ends_with("# EOF\n") && open.contains("# UNIT tracer_oncpu_seconds seconds"));
    for metric in ["switch_cost", "runq_latency", "offcpu", "oncpu"] {
        assert!(
            body.contains(&format!("# TYPE tracer_{metric}_seconds histogram")),
            "{metric}"
        );
    }
}

/// Waits for scrapes that surely hold the final totals: at least three of
/// every series in all, the last more than 2.5 s after the workload ended
/// (`done` exists; the served totals are refreshed every second).
fn wait_for_the_final_scrapes(prom: &Prometheus, done: &Path) {
    let started = std::time::Instant::now();
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the workload did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let done_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "Prometheus did not scrape the tracer after the workload"
        );
        let samples = prom.api(
            "query",
            &[("query", "min(count_over_time(tracer_switches_total[10m]))")],
        );
        let last = prom.api("query", &[("query", "min(timestamp(tracer_switches_total))")]);
        let value = |r: &[Value]| {
            r.first()
                .and_then(|v| v["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if value(&samples).is_some_and(|n| n >= 3.0) && value(&last).is_some_and(|t| t > done_at + 2.5) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Prometheus's view of the thread class, against tracer's final report
/// (`thread` switches, switch cost `p50`) and the kernel's count (`truth`).
/// The target is gone now, so each series' last sample is read (range
/// selectors skip the staleness markers).
fn check_the_last_scrape(prom: &Prometheus, thread: u64, truth: u64, p50: u64) {
    let series = r#"{class="thread",workload="ping pong \"1\""}"#;
    let scraped = prom.scalar(&format!("sum(last_over_time(tracer_switches_total{series}[10m]))"));
    eprintln!("thread switches: tracer's report {thread}, Prometheus's last scrape {scraped}, kernel {truth}");
    assert_eq!(
        scraped as u64, thread,
        "the last scrape, after the workload, has all of them"
    );
    let quantile = prom.scalar(&format!(
        "histogram_quantile(0.5, last_over_time(tracer_switch_cost_seconds_bucket{series}[10m]))"
    )) * 1e9;
    let bounds = prometheus::bounds_ns();
    let upper = *bounds.iter().find(|&&b| b >= p50).unwrap() as f64;
    let lower = bounds.iter().rev().find(|&&b| (b as f64) < upper).copied().unwrap_or(0) as f64;
    eprintln!(
        "thread switch cost p50: tracer {p50} ns, Prometheus histogram_quantile {quantile:.0} ns, bucket ({lower}, {upper}] ns"
    );
    assert!(
        quantile >= lower - 1.0 && quantile <= upper + 1.0,
        "histogram_quantile {quantile} ns outside tracer's p50 bucket ({lower}, {upper}]"
    );
}

/// Counters only grow, in every series, over every scrape since `start`.
fn check_counters_only_grow(prom: &Prometheus, start: std::time::SystemTime) {
    let now = std::time::SystemTime::now();
    let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let ranges = prom.api(
        "query_range",
        &[
            ("query", "tracer_switches_total"),
            ("start", &secs(start)),
            ("end", &secs(now + Duration::from_secs(1))),
            ("step", "1"),
        ],
    );
    assert_eq!(ranges.len(), 8, "4 classes x 2 kinds: {ranges:?}");
    for r in &ranges {
        let values: Vec<f64> = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[1].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(values.len() >= 3, "{} samples of {}", values.len(), r["metric"]);
        assert!(
            values.windows(2).all(|w| w[0] <= w[1]),
            "{} went down: {values:?}",
            r["metric"]
        );
    }
}
