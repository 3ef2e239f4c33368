//! Numbers and names made fit for a terminal.

/// A duration in ns, human-readable with three significant digits.
pub fn fmt_ns(ns: u64) -> String {
    let v = ns as f64;
    let (value, unit) = if ns < 1_000 {
        return format!("{ns}ns");
    } else if ns < 1_000_000 {
        (v / 1e3, "us")
    } else if ns < 1_000_000_000 {
        (v / 1e6, "ms")
    } else {
        (v / 1e9, "s")
    };
    if value >= 100.0 {
        format!("{value:.0}{unit}")
    } else if value >= 10.0 {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.2}{unit}")
    }
}

/// A task name for a terminal: printable ASCII as is, anything else escaped
/// (`\xNN`), so a hostile name cannot move the cursor or fake a line.
pub fn escape_comm(comm: &[u8]) -> String {
    let mut out = String::new();
    for &b in comm {
        if b.is_ascii_graphic() || b == b' ' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_escaped() {
        assert_eq!(escape_comm(b"bash"), "bash");
        assert_eq!(escape_comm(b"a\x1b[2Jb\n"), "a\\x1b[2Jb\\x0a");
        assert_eq!(escape_comm(&[0xff, b'x']), "\\xffx");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_ns(0), "0ns");
        assert_eq!(fmt_ns(999), "999ns");
        assert_eq!(fmt_ns(1_234), "1.23us");
        assert_eq!(fmt_ns(45_600), "45.6us");
        assert_eq!(fmt_ns(456_000), "456us");
        assert_eq!(fmt_ns(12_300_000), "12.3ms");
        assert_eq!(fmt_ns(2_500_000_000), "2.50s");
    }
}
