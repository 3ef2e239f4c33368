//! The targets of the overhead benchmark, each decided from paired per-round
//! differences between two variants of the same run: "met" when the whole
//! 95 % interval of the median difference is on the right side of the line,
//! "missed" when it is all on the wrong side, "undecided" when it straddles.

use super::{
    measure::Run,
    stats::{Estimate, bootstrap_median, median},
};

/// One target: `key` against `against` (scaled, plus an allowance).
struct Spec {
    what: &'static str,
    key: &'static str,
    /// (variant, factor): the limit is factor × its ns added, + `plus_ns`.
    against: (&'static str, f64),
    plus_ns: f64,
}

const TARGETS: &[Spec] = &[
    Spec {
        what: "-m oncpu below libbpf-tools cpudist",
        key: "oncpu",
        against: ("cpudist", 1.0),
        plus_ns: 0.0,
    },
    Spec {
        what: "-m runq below libbpf-tools runqlat",
        key: "runq",
        against: ("runqlat", 1.0),
        plus_ns: 0.0,
    },
    Spec {
        what: "default below runqlat and cpudist together",
        key: "default",
        against: ("runqlat+cpudist", 1.0),
        plus_ns: 0.0,
    },
    Spec {
        what: "-m none within 1.5x the one-program floor's ns",
        key: "none",
        against: ("floor1", 1.5),
        plus_ns: 0.0,
    },
    Spec {
        what: "default within the two-program floor + 150 ns",
        key: "default",
        against: ("floor2", 1.0),
        plus_ns: 150.0,
    },
];

/// A target's outcome on one workload.
pub struct Outcome {
    pub what: &'static str,
    /// Median ns added per switch of the variant, and the limit's.
    pub value_ns: f64,
    pub limit_ns: f64,
    /// Per round, variant minus limit (ns per switch): median and interval.
    pub difference: Estimate,
    pub verdict: &'static str,
}

/// The targets whose two variants both ran, given each variant's runs by key.
pub fn outcomes<'a>(runs: impl Fn(&str) -> Option<&'a [Run]>) -> Vec<Outcome> {
    TARGETS
        .iter()
        .filter_map(|t| {
            let (a, b) = (runs(t.key)?, runs(t.against.0)?);
            let limit = |r: &Run| t.against.1 * r.added_ns_per_switch() + t.plus_ns;
            // Round by round: both ran in the same round, a few seconds apart.
            let diffs: Vec<f64> = a
                .iter()
                .zip(b)
                .map(|(x, y)| x.added_ns_per_switch() - limit(y))
                .collect();
            let difference = bootstrap_median(&diffs);
            Some(Outcome {
                what: t.what,
                value_ns: median(&a.iter().map(Run::added_ns_per_switch).collect::<Vec<_>>()),
                limit_ns: median(&b.iter().map(limit).collect::<Vec<_>>()),
                difference,
                verdict: match difference.below(0.0) {
                    Some(true) => "met",
                    Some(false) => "missed",
                    None => "undecided",
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(added: &[f64]) -> Vec<Run> {
        added
            .iter()
            .map(|a| Run {
                elapsed_ns: 1000.0 * (1000.0 + a),
                base_ns: 1_000_000.0,
                switches: 1000.0,
                others_busy: 0.0,
                prog_ns_per_switch: f64::NAN,
                progs: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn met_missed_and_undecided() {
        let noise = [-10.0, 0.0, 10.0, -5.0, 5.0, 0.0, 3.0, -3.0, 8.0, -8.0];
        let at = |level: f64| runs(&noise.map(|n| level + n));
        let (oncpu, cpudist, runq, runqlat) = (at(100.0), at(200.0), at(300.0), at(300.0));
        let (none, floor1) = (at(200.0), at(100.0));
        let out = outcomes(|k| match k {
            "oncpu" => Some(&oncpu),
            "cpudist" => Some(&cpudist),
            "runq" => Some(&runq),
            "runqlat" => Some(&runqlat),
            "none" => Some(&none),
            "floor1" => Some(&floor1),
            _ => None,
        });
        let verdicts: Vec<(&str, &str)> = out.iter().map(|o| (o.what, o.verdict)).collect();
        assert_eq!(
            verdicts,
            [
                ("-m oncpu below libbpf-tools cpudist", "met"),
                ("-m runq below libbpf-tools runqlat", "undecided"),
                ("-m none within 1.5x the one-program floor's ns", "missed"),
            ]
        );
        let none_target = &out[2];
        assert!((none_target.value_ns - 200.0).abs() < 11.0 && (none_target.limit_ns - 150.0).abs() < 16.0);
    }
}
