//! Which latencies to measure (`--metrics switch,runq,offcpu,oncpu`).

use std::fmt;

pub use tracer_common::metric::Metric;

/// A set of metrics, as the kernel programs' `METRICS` bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricSet(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("unknown metric `{0}`: choose from switch, runq, offcpu, oncpu (or all, none)")]
    Unknown(String),
}

impl MetricSet {
    pub const ALL: MetricSet = MetricSet(0b1111);
    pub const NONE: MetricSet = MetricSet(0);

    pub fn contains(self, m: Metric) -> bool {
        self.0 & m.bit() != 0
    }

    pub fn with(self, m: Metric) -> Self {
        Self(self.0 | m.bit())
    }

    pub fn without(self, m: Metric) -> Self {
        Self(self.0 & !m.bit())
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    pub fn iter(self) -> impl Iterator<Item = Metric> {
        Metric::ALL.into_iter().filter(move |&m| self.contains(m))
    }

    /// Parses `switch,runq`, `all` or `none`.
    pub fn parse(s: &str) -> Result<Self, MetricsError> {
        let mut set = MetricSet::NONE;
        for name in s.split(',').map(str::trim) {
            set = match name {
                "all" => MetricSet::ALL,
                "none" => set,
                _ => set.with(
                    Metric::ALL
                        .into_iter()
                        .find(|m| m.short() == name)
                        .ok_or_else(|| MetricsError::Unknown(name.to_owned()))?,
                ),
            };
        }
        Ok(set)
    }
}

impl fmt::Display for MetricSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Metric::short).collect();
        f.write_str(if names.is_empty() { "none" } else { "" })?;
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(MetricSet::parse("all"), Ok(MetricSet::ALL));
        assert_eq!(MetricSet::parse("none"), Ok(MetricSet::NONE));
        let s = MetricSet::parse("switch, oncpu").unwrap();
        assert!(s.contains(Metric::SwitchCost) && s.contains(Metric::Oncpu));
        assert!(!s.contains(Metric::Runq) && !s.contains(Metric::Offcpu));
        assert_eq!(s.to_string(), "switch,oncpu");
        assert_eq!(
            MetricSet::parse("runq,bogus"),
            Err(MetricsError::Unknown("bogus".into()))
        );
        assert!(MetricSet::parse("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = MetricSet::parse(&s);
        }
    }
}
