//! Durations on the command line: `10s`, `500ms`, `2m`, `1.5h`, `250us`; a
//! bare number is seconds.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error(
        "`{0}` is not a duration: expected a number with an optional unit (ns, us, ms, s, m, h), e.g. 10s, 500ms, 2m"
    )]
    Syntax(String),
    #[error("unknown unit `{unit}` in `{input}`: use ns, us, ms, s, m or h")]
    Unit { input: String, unit: String },
    #[error("`{0}` is too long (the limit is about 584 years)")]
    Overflow(String),
    #[error("`{0}` is zero: give a positive duration")]
    Zero(String),
}

/// Parses a positive duration.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let ns_per_unit: u128 = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1_000_000_000,
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "m" | "min" | "mins" => 60_000_000_000,
        "h" | "hr" | "hrs" => 3_600_000_000_000,
        other => {
            return Err(DurationError::Unit {
                input: input.to_owned(),
                unit: other.to_owned(),
            });
        }
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(DurationError::Syntax(input.to_owned()));
    }
    let overflow = || DurationError::Overflow(input.to_owned());
    // Exact integer arithmetic: whole * unit + frac * unit / 10^digits.
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| overflow())?
    };
    let mut ns = whole.checked_mul(ns_per_unit).ok_or_else(overflow)?;
    if !frac.is_empty() {
        let digits = frac.len().min(30) as u32;
        let frac: u128 = frac[..digits as usize].parse().map_err(|_| overflow())?;
        ns = ns
            .checked_add(frac.checked_mul(ns_per_unit).ok_or_else(overflow)? / 10u128.pow(digits))
            .ok_or_else(overflow)?;
    }
    let ns = u64::try_from(ns).map_err(|_| overflow())?;
    if ns == 0 {
        return Err(DurationError::Zero(input.to_owned()));
    }
    Ok(Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(".25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse("100ns"), Ok(Duration::from_nanos(100)));
        assert_eq!(parse(" 3 s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("abc"), Err(DurationError::Unit { .. })));
        assert!(matches!(parse("10x"), Err(DurationError::Unit { .. })));
        assert!(matches!(parse("-5s"), Err(DurationError::Unit { .. })));
        assert!(matches!(parse("1.2.3s"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("."), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("0"), Err(DurationError::Zero(_))));
        assert!(matches!(parse("0.0000000001s"), Err(DurationError::Zero(_))));
        assert!(matches!(parse("99999999999h"), Err(DurationError::Overflow(_))));
        assert!(matches!(
            parse("99999999999999999999999999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn whole_seconds_round_trip(n in 1u64..1_000_000) {
            proptest::prop_assert_eq!(parse(&format!("{n}s")), Ok(Duration::from_secs(n)));
            proptest::prop_assert_eq!(parse(&n.to_string()), Ok(Duration::from_secs(n)));
        }
    }
}
