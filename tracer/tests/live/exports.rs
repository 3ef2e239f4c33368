//! The outputs for other tools, against the real thing: a Prometheus server
//! scraping the running tracer, HdrHistogram's own Java reader on the
//! interval log, and the SVG plot parsed and rendered to pixels.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
};

use tracer::export::{plot, prometheus};

use super::*;

/// A scratch directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tracer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Installs a Debian package when `path` is missing (the tests run as root;
/// `cargo xtask test` installs them beforehand).
fn ensure_package(path: &str, package: &str) {
    if Path::new(path).exists() {
        return;
    }
    eprintln!("installing {package} for {path}");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(install(), "cannot install {package}");
    }
    assert!(Path::new(path).exists(), "{package} did not install {path}");
    // Where systemd would start the package's service, stop it: the tests run
    // their own Prometheus, and nothing they install may outlive them.
    if package == "prometheus" && Path::new("/run/systemd/system").exists() {
        let _ = Command::new("systemctl")
            .args(["disable", "--now", "prometheus.service"])
            .status();
    }
}

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
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
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

    // The body, while it runs: valid for promtool, and in both formats.
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok((200, b)) = http_get(&target, "/metrics", None)
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
    let (code, open) = http_get(&target, "/metrics", Some("application/openmetrics-text; version=1.0.0")).unwrap();
    assert_eq!(code, 200);
    assert!(open.ends_with("# EOF\n") && open.contains("# UNIT tracer_oncpu_seconds seconds"));
    for metric in ["switch_cost", "runq_latency", "offcpu", "oncpu"] {
        assert!(
            body.contains(&format!("# TYPE tracer_{metric}_seconds histogram")),
            "{metric}"
        );
    }

    // Scrapes that surely hold the final totals: at least three of every
    // series in all, the last more than 2.5 s after the workload ended (the
    // served totals are refreshed every second).
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
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::fs::write(&release, "").unwrap();
    let (status, stdout) = tracer.finish();
    assert!(status.success(), "{status:?}");
    let (helpers, report) = split_output(&stdout);
    let report = parse_report(&report.to_string());
    let truth = helpers[0]["switches"].as_u64().unwrap();
    let thread = class_switches(&report, "thread");
    assert!(thread as f64 >= 0.99 * truth as f64, "thread {thread} of {truth}");
    let p50 = report["classes"]["thread"]["switch_cost_ns"]["p50"].as_u64().unwrap();

    // Prometheus's view. The target is gone now, so read each series' last
    // sample (range selectors skip the staleness markers).
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

    // Counters only grow, in every series, over every scrape.
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

/// Prints tag, start (s), length (s), count and p50 of every histogram in
/// an interval log, with HdrHistogram's own Java reader.
const JAVA_READER: &str = r#"
import org.HdrHistogram.*;

public class HdrLogCounts {
    public static void main(String[] args) throws Exception {
        HistogramLogReader reader = new HistogramLogReader(args[0]);
        EncodableHistogram h;
        while ((h = reader.nextIntervalHistogram()) != null) {
            AbstractHistogram a = (AbstractHistogram) h;
            System.out.println(h.getTag() + " " + h.getStartTimeStamp() / 1000.0 + " "
                + (h.getEndTimeStamp() - h.getStartTimeStamp()) / 1000.0 + " "
                + a.getTotalCount() + " " + a.getValueAtPercentile(50.0));
        }
    }
}
"#;

/// `--hdr-log` with `--interval`: HdrHistogram's Java `HistogramLogReader`
/// reads every interval back, with the same counts as the JSON reports.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn hdr_log_reads_back_with_the_reports_counts() {
    const JAR: &str = "/usr/share/java/hdrhistogram.jar";
    ensure_package(JAR, "libhdrhistogram-java");
    ensure_package("/usr/bin/java", "default-jre-headless");
    let dir = TempDir::new("hdrlog");
    let log = dir.0.join("tracer.hlog");
    let mut tracer = spawn_tracer(["--json", "-i", "1s", "-d", "3500ms", "--hdr-log", log.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    let truth = workload::run(&Spec::new(PingPong::Threads, workload_cpu(), 50_000))
        .unwrap()
        .switches();
    let (status, stdout) = tracer.finish();
    assert!(status.success());
    let reports: Vec<Value> = stdout.lines().map(parse_report).collect();
    assert_eq!(reports.len(), 4, "3 intervals and the last half second: {stdout}");

    let reader = dir.0.join("HdrLogCounts.java");
    std::fs::write(&reader, JAVA_READER).unwrap();
    let out = Command::new("java")
        .args(["-cp", JAR])
        .arg(&reader)
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = lines.lines().map(|l| l.split(' ').collect()).collect();
    let tags = Class::ALL.len() * Metric::ALL.len();
    assert_eq!(rows.len(), reports.len() * tags, "{lines}");
    let mut thread_cost = 0;
    for (report, rows) in reports.iter().zip(rows.chunks(tags)) {
        let length = report["duration_ns"].as_f64().unwrap() / 1e9;
        for row in rows {
            let (class, metric) = row[0].split_once('.').unwrap();
            let count: u64 = row[3].parse().unwrap();
            let json = &report["classes"][class][metric];
            assert_eq!(count, json["count"].as_u64().unwrap(), "{}: {row:?} vs {json}", row[0]);
            let logged: f64 = row[2].parse().unwrap();
            assert!((logged - length).abs() < 0.002, "{row:?}: length {logged} vs {length}");
            if count > 0 {
                // Java's p50 of the logged histogram is tracer's own (the same
                // 3-digit HdrHistogram, so within 0.1 %).
                let (java, ours) = (row[4].parse::<f64>().unwrap(), json["p50"].as_f64().unwrap());
                assert!(
                    (java - ours).abs() <= 0.001 * ours + 1.0,
                    "{row:?}: p50 {java} vs {ours}"
                );
            }
            if row[0] == "thread.switch_cost_ns" {
                thread_cost += count;
            }
        }
        // All tags of an interval share its start.
        assert!(rows.iter().all(|r| r[1] == rows[0][1]), "{rows:?}");
    }
    eprintln!(
        "hdr log: {} histograms; thread switch cost samples {thread_cost}, workload switches {truth}",
        rows.len()
    );
    assert!(thread_cost as f64 >= 0.99 * truth as f64, "{thread_cost} of {truth}");
}

/// Renders an SVG to a PNG that is not blank, in which the thread and the
/// process colors each cover more than `min_pixels` pixels.
fn assert_lines_visible(svg: &str, png: &Path, min_pixels: usize) {
    let pixels = render_png(
        svg,
        png,
        &[plot::class_color(Class::Thread), plot::class_color(Class::Process)],
    );
    eprintln!(
        "PNG: thread-colored pixels {}, process-colored {}",
        pixels[0], pixels[1]
    );
    assert!(pixels.iter().all(|&n| n > min_pixels), "lines not visible: {pixels:?}");
}

/// Renders an SVG to pixels and counts, per color, the pixels close to it.
fn render_png(svg: &str, png: &Path, colors: &[plotters::style::RGBColor]) -> Vec<usize> {
    use resvg::{tiny_skia, usvg};
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.save_png(png).unwrap();
    let decoded = tiny_skia::Pixmap::load_png(png).unwrap();
    let pixels = decoded.pixels();
    let not_white = pixels
        .iter()
        .filter(|p| (p.red(), p.green(), p.blue()) != (255, 255, 255))
        .count();
    assert!(
        not_white * 100 > pixels.len(),
        "blank: {not_white} of {} pixels drawn",
        pixels.len()
    );
    colors
        .iter()
        .map(|c| {
            pixels
                .iter()
                .filter(|p| p.red().abs_diff(c.0) < 24 && p.green().abs_diff(c.1) < 24 && p.blue().abs_diff(c.2) < 24)
                .count()
        })
        .collect()
}

/// The data lines of a plot, by color: polylines of more than two points
/// (axes, ticks and legend swatches have two).
fn lines_by_color(svg: &str) -> Vec<(String, Vec<(i64, i64)>)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| {
            let points: Vec<(i64, i64)> = n
                .attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            (n.attribute("stroke").unwrap().to_ascii_uppercase(), points)
        })
        .filter(|(_, points)| points.len() > 2)
        .collect()
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// `--plot`: one chart per metric, in each a rising line for every class
/// with samples; the picture renders to a PNG that shows them.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn plot_has_a_line_per_class() {
    let dir = TempDir::new("plot");
    let svg_path = dir.0.join("tracer.svg");
    let mut tracer = spawn_tracer(["--json", "-d", "3s", "--plot", svg_path.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    for kind in [PingPong::Threads, PingPong::Processes] {
        workload::run(&Spec::new(kind, workload_cpu(), 30_000)).unwrap();
    }
    let (status, stdout) = tracer.finish();
    assert!(status.success());
    let report = parse_report(stdout.trim());
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let lines = lines_by_color(&svg);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    for metric in Metric::ALL {
        let title = format!("{} by percentile", metric.key());
        assert!(texts.iter().any(|t| t.contains(&title)), "no chart {title}");
    }
    for class in Class::ALL {
        let charts = Metric::ALL
            .iter()
            .filter(|m| report["classes"][class.name()][m.key()]["count"].as_u64().unwrap() > 0)
            .count();
        let color = hex(plot::class_color(class));
        let drawn: Vec<_> = lines.iter().filter(|(c, _)| *c == color).collect();
        eprintln!(
            "{}: {} lines for {charts} metrics with samples",
            class.name(),
            drawn.len()
        );
        assert_eq!(
            drawn.len(),
            charts,
            "{}: one line per chart it has samples in",
            class.name()
        );
        for (_, points) in drawn {
            // Left to right, and never down (SVG's y grows downwards).
            assert!(
                points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1),
                "{points:?}"
            );
        }
    }
    assert!(class_switches(&report, "thread") > 0 && class_switches(&report, "process") > 0);
    assert_lines_visible(&svg, &dir.0.join("tracer.png"), 500);
}

/// `tracer bench --plot`: one chart with the thread and the process workload.
#[test]
#[ignore = "needs root and a kernel with BPF and BTF: run `cargo xtask test`"]
fn bench_plot_has_both_workloads() {
    let dir = TempDir::new("bench-plot");
    let svg_path = dir.0.join("bench.svg");
    let out = tracer_cmd()
        .args(["bench", "--runs", "2", "--round-trips", "20000", "--json", "--plot"])
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("tracer bench: switch_cost_ns by percentile (2 runs x 20000 round trips)"));
    let lines = lines_by_color(&svg);
    let colors: Vec<&str> = lines.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        colors,
        [
            hex(plot::class_color(Class::Thread)),
            hex(plot::class_color(Class::Process))
        ],
        "one line per workload"
    );
    for name in ["thread ping-pong", "process ping-pong"] {
        assert!(svg.contains(name), "no legend {name}");
    }
    assert_lines_visible(&svg, &dir.0.join("bench.png"), 300);
}
