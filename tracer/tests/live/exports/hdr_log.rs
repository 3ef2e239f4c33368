//! `--hdr-log` read back by HdrHistogram's own Java reader.

use super::*;

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
