//! `--hdr-log FILE`: each report's histograms in the HdrHistogram interval
//! log format (V2, compressed), one tagged line per class and metric, as
//! HdrHistogram's own tools (`HistogramLogProcessor`, the readers of every
//! port) read it. Values are in nanoseconds.

use std::{
    fs::File,
    io::{self, BufWriter, Write as _},
    time::{Duration, SystemTime},
};

use hdrhistogram::serialization::{V2DeflateSerializer, interval_log::IntervalLogWriterBuilder, interval_log::Tag};
use tracer_common::Class;

use crate::{snapshot::Snapshot, snapshot::metrics::Metric};

#[derive(Debug, thiserror::Error)]
pub enum HdrLogError {
    #[error("cannot write the HdrHistogram log: {0}")]
    Io(#[from] io::Error),
    #[error("cannot encode a histogram for the HdrHistogram log: {0}")]
    Encode(String),
}

/// The tag of one class and metric, e.g. `thread.switch_cost_ns`.
pub fn tag(class: Class, metric: Metric) -> String {
    format!("{}.{}", class.name(), metric.key())
}

pub struct HdrLog {
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
    /// When tracing started (the log's StartTime), on the monotonic clock.
    started_ns: u64,
}

impl HdrLog {
    /// Writes the log's header. `started_ns` is the `CLOCK_MONOTONIC` time of
    /// the first snapshot, `started_at` the same instant on the wall clock.
    pub fn start(file: File, started_ns: u64, started_at: SystemTime) -> Result<Self, HdrLogError> {
        let mut log = Self {
            out: BufWriter::new(file),
            serializer: V2DeflateSerializer::new(),
            started_ns,
        };
        IntervalLogWriterBuilder::new()
            .add_comment("[Logged with tracer: context-switch latencies in ns, tag = class.metric]")
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(started_at)
            .with_base_time(started_at)
            .begin_log_with(&mut log.out, &mut log.serializer)?;
        writeln!(
            log.out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        log.out.flush()?;
        Ok(log)
    }

    /// Appends the interval between two snapshots: one histogram per class
    /// and measured metric, empty ones included, so that every interval has
    /// the same tags.
    pub fn write_interval(&mut self, earlier: &Snapshot, now: &Snapshot) -> Result<(), HdrLogError> {
        let delta = now.since(earlier);
        let start = Duration::from_nanos(earlier.taken_ns.saturating_sub(self.started_ns));
        let length = Duration::from_nanos(now.taken_ns.saturating_sub(earlier.taken_ns));
        // A builder without headers writes nothing: it only lends a writer.
        let mut writer = IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        for metric in Metric::ALL {
            let Some(hists) = delta.latency(metric) else {
                continue;
            };
            for class in Class::ALL {
                let hdr = hists[class.index()].to_hdr();
                let tag = tag(class, metric);
                writer
                    .write_histogram(&hdr, start, length, Tag::new(&tag))
                    .map_err(|e| HdrLogError::Encode(e.to_string()))?;
            }
        }
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::{Deserializer, interval_log::IntervalLogIterator, interval_log::LogEntry};

    use base64::Engine as _;

    use super::*;
    use crate::snapshot::metrics::MetricSet;

    #[test]
    fn writes_a_log_the_crate_reads_back() {
        let path = std::env::temp_dir().join(format!("tracer-hdrlog-{}.hlog", std::process::id()));
        let file = super::super::create_output(&path).unwrap();
        let mut a = Snapshot::empty(1, MetricSet::NONE.with(Metric::SwitchCost));
        a.taken_ns = 5_000_000_000;
        let mut log = HdrLog::start(
            file,
            a.taken_ns,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let mut b = a.clone();
        b.taken_ns += 1_500_000_000;
        for ns in [400, 500, 600] {
            b.record(0, Class::Thread, true, &[(Metric::SwitchCost, ns)]);
        }
        log.write_interval(&a, &b).unwrap();
        drop(log);
        let text = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let header = String::from_utf8_lossy(&text);
        assert!(
            header.contains("#[StartTime: 1700000000.000 (seconds since epoch)]"),
            "{header}"
        );
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&text) {
            if let LogEntry::Interval(h) = entry.unwrap() {
                let decoded: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(
                        &mut base64::engine::general_purpose::STANDARD
                            .decode(h.encoded_histogram())
                            .unwrap()
                            .as_slice(),
                    )
                    .unwrap();
                assert_eq!(h.start_timestamp(), Duration::ZERO);
                assert_eq!(h.duration(), Duration::from_millis(1500));
                seen.push((h.tag().unwrap().as_str().to_owned(), decoded.len()));
            }
        }
        assert_eq!(
            seen,
            [
                ("idle.switch_cost_ns".to_owned(), 0),
                ("kernel.switch_cost_ns".to_owned(), 0),
                ("thread.switch_cost_ns".to_owned(), 3),
                ("process.switch_cost_ns".to_owned(), 0),
            ]
        );
    }
}
