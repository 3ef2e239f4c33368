//! `--label key=value`: a label added to every exported series.

use std::fmt;

/// Labels tracer sets itself, and so cannot be given.
pub const RESERVED: [&str; 4] = ["class", "kind", "le", "quantile"];
/// Longest key and value accepted, in bytes.
pub const MAX_KEY: usize = 128;
pub const MAX_VALUE: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("expected KEY=VALUE, e.g. app=nginx")]
    NoEquals,
    #[error("label name `{0}` is not valid: letters, digits and `_`, not starting with a digit")]
    BadKey(String),
    #[error("label name `{0}` is reserved (names starting with `__` are Prometheus's own)")]
    ReservedPrefix(String),
    #[error("label name `{0}` is set by tracer itself; choose another")]
    Reserved(String),
    #[error("label name longer than {MAX_KEY} bytes")]
    KeyTooLong,
    #[error("label value is empty (an empty value is the same as no label)")]
    EmptyValue,
    #[error("label value longer than {MAX_VALUE} bytes")]
    ValueTooLong,
    #[error("label value contains a control character")]
    ControlCharacter,
}

/// Parses `key=value`. The key follows Prometheus's label-name rules
/// (`[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-prefixed, not one of tracer's own);
/// the value is any text without control characters (it is escaped when
/// exported).
pub fn parse(s: &str) -> Result<Label, LabelError> {
    let (key, value) = s.split_once('=').ok_or(LabelError::NoEquals)?;
    if key.len() > MAX_KEY {
        return Err(LabelError::KeyTooLong);
    }
    let mut chars = key.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(LabelError::BadKey(key.escape_debug().to_string()));
    }
    if key.starts_with("__") {
        return Err(LabelError::ReservedPrefix(key.to_owned()));
    }
    if RESERVED.contains(&key) {
        return Err(LabelError::Reserved(key.to_owned()));
    }
    if value.is_empty() {
        return Err(LabelError::EmptyValue);
    }
    if value.len() > MAX_VALUE {
        return Err(LabelError::ValueTooLong);
    }
    if value.chars().any(char::is_control) {
        return Err(LabelError::ControlCharacter);
    }
    Ok(Label {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// The first key given twice, if any.
pub fn duplicate(labels: &[Label]) -> Option<&str> {
    labels
        .iter()
        .enumerate()
        .find(|(i, l)| labels[..*i].iter().any(|e| e.key == l.key))
        .map(|(_, l)| l.key.as_str())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            parse("app=nginx"),
            Ok(Label {
                key: "app".into(),
                value: "nginx".into()
            })
        );
        // Only the first `=` splits; quotes and backslashes are fine (escaped on export).
        assert_eq!(parse("q=a=b\"\\").unwrap().value, "a=b\"\\");
        assert_eq!(parse("_x9=ü").unwrap().key, "_x9");
        assert_eq!(parse("app"), Err(LabelError::NoEquals));
        assert_eq!(parse("=v"), Err(LabelError::BadKey(String::new())));
        assert_eq!(parse("9a=v"), Err(LabelError::BadKey("9a".into())));
        assert_eq!(parse("a-b=v"), Err(LabelError::BadKey("a-b".into())));
        assert_eq!(parse("__name__=v"), Err(LabelError::ReservedPrefix("__name__".into())));
        assert_eq!(parse("class=v"), Err(LabelError::Reserved("class".into())));
        assert_eq!(parse("le=1"), Err(LabelError::Reserved("le".into())));
        assert_eq!(parse("app="), Err(LabelError::EmptyValue));
        assert_eq!(parse("app=a\nb"), Err(LabelError::ControlCharacter));
        assert_eq!(
            parse(&format!("app={}", "x".repeat(2000))),
            Err(LabelError::ValueTooLong)
        );
        assert_eq!(parse(&format!("{}=v", "k".repeat(200))), Err(LabelError::KeyTooLong));
    }

    #[test]
    fn finds_duplicates() {
        let l = |s| parse(s).unwrap();
        assert_eq!(duplicate(&[l("a=1"), l("b=2")]), None);
        assert_eq!(duplicate(&[l("a=1"), l("b=2"), l("a=3")]), Some("a"));
    }

    proptest! {
        /// No input panics; whatever is accepted obeys the rules.
        #[test]
        fn never_panics_and_accepts_only_valid(s in "\\PC{0,60}|.{0,60}|[a-z_]{1,8}=[^\\n]{0,20}") {
            if let Ok(label) = parse(&s) {
                prop_assert_eq!(format!("{label}"), s.clone());
                prop_assert!(!label.key.is_empty() && !label.key.starts_with("__"));
                prop_assert!(label.key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                prop_assert!(!label.key.starts_with(|c: char| c.is_ascii_digit()));
                prop_assert!(!RESERVED.contains(&label.key.as_str()));
                prop_assert!(!label.value.is_empty() && !label.value.chars().any(char::is_control));
            }
        }

        /// Any valid key with any value without control characters comes back as given.
        #[test]
        fn valid_labels_round_trip(key in "[a-zA-Z][a-zA-Z0-9_]{0,20}", value in "[^\\p{Cc}]{1,40}") {
            prop_assume!(!RESERVED.contains(&key.as_str()));
            let label = parse(&format!("{key}={value}")).unwrap();
            prop_assert_eq!(label.key, key);
            prop_assert_eq!(label.value, value);
        }

        /// Arbitrary bytes, made into text lossily, never panic.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
