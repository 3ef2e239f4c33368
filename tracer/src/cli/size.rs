//! Sizes on the command line: `64K`, `1M`, `2G`, `4096` (bytes); binary
//! multiples (K = 1024).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("`{0}` is not a size: expected a whole number with an optional K, M or G, e.g. 64K, 1M")]
    Syntax(String),
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses a size in bytes (0 allowed).
pub fn parse(input: &str) -> Result<usize, SizeError> {
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(SizeError::Syntax(input.to_owned())),
    };
    if number.is_empty() {
        return Err(SizeError::Syntax(input.to_owned()));
    }
    let n: usize = number.parse().map_err(|_| SizeError::Overflow(input.to_owned()))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| SizeError::Overflow(input.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("4096"), Ok(4096));
        assert_eq!(parse("64K"), Ok(65536));
        assert_eq!(parse("64k"), Ok(65536));
        assert_eq!(parse("1M"), Ok(1 << 20));
        assert_eq!(parse("2GiB"), Ok(2 << 30));
        assert!(matches!(parse("1.5M"), Err(SizeError::Syntax(_))));
        assert!(matches!(parse("M"), Err(SizeError::Syntax(_))));
        assert!(matches!(parse("-1K"), Err(SizeError::Syntax(_))));
        assert!(matches!(parse("99999999999999999999K"), Err(SizeError::Overflow(_))));
        assert!(matches!(parse("99999999999999G"), Err(SizeError::Overflow(_))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = parse(&s);
        }
    }
}
