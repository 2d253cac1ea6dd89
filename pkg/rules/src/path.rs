//! `FieldPath`: the dotted field paths rules read (`spec.rules[*].backendRefs[*]`), parsed once.

use std::fmt;

use serde_json::Value;

/// One step of a [`FieldPath`].
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Segment {
    /// The value of a key of an object (`spec`, or `["cert-manager.io/issuer"]`).
    Key(String),
    /// Every element of a list (`[*]`).
    Each,
}

/// A parsed field path: keys separated by dots, `[*]` for every element of a list, and
/// `["..."]` for a key holding dots or slashes (`metadata.annotations["cert-manager.io/issuer"]`).
///
/// Reading a path never fails: a missing key, a key of something that is not an object, or `[*]`
/// on something that is not a list yields nothing.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

/// Why a path's text is not a path.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("bad path {text:?}: {reason}")]
pub struct PathError {
    /// The path as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldPath {
    /// Parses a path.
    ///
    /// # Errors
    /// [`PathError`] naming what is wrong: an empty path or segment, an unclosed bracket or
    /// quote, a bracket holding something other than `*` or a quoted key.
    pub fn parse(text: &str) -> Result<FieldPath, PathError> {
        let fail = |reason: &str| PathError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut segments = Vec::new();
        let mut rest = text;
        // Whether the next segment must be introduced by a dot (false at the start and right
        // after a dot).
        let mut after_segment = false;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('[') {
                if let Some(after) = inner.strip_prefix("*]") {
                    if !after_segment {
                        return Err(fail("`[*]` must follow a key"));
                    }
                    segments.push(Segment::Each);
                    rest = after;
                } else if let Some(quoted) = inner.strip_prefix('"') {
                    let (key, after) = read_quoted(quoted).ok_or_else(|| fail("unclosed quote"))?;
                    let after = after
                        .strip_prefix(']')
                        .ok_or_else(|| fail("a quoted key must be followed by `]`"))?;
                    if key.is_empty() {
                        return Err(fail("empty quoted key"));
                    }
                    segments.push(Segment::Key(key));
                    rest = after;
                } else {
                    return Err(fail("a bracket holds `*` or a quoted key (`[\"a.b\"]`)"));
                }
                after_segment = true;
                continue;
            }
            if after_segment {
                rest = rest
                    .strip_prefix('.')
                    .ok_or_else(|| fail("expected `.` or `[` after a segment"))?;
                if rest.is_empty() {
                    return Err(fail("trailing `.`"));
                }
                if rest.starts_with('[') && !rest.starts_with("[\"") {
                    return Err(fail("`[*]` must follow a key, not a dot"));
                }
                after_segment = false;
                continue;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty() {
                return Err(fail("empty segment"));
            }
            if let Some(bad) = key
                .chars()
                .find(|c| c.is_whitespace() || matches!(c, ']' | '"'))
            {
                return Err(fail(&format!(
                    "unexpected {bad:?} in a key; quote keys like [\"a.b\"]"
                )));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &rest[end..];
            after_segment = true;
        }
        if segments.is_empty() {
            return Err(fail("empty path"));
        }
        Ok(FieldPath { segments })
    }

    /// The steps of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the path has a `[*]` (reads any number of values).
    pub fn has_each(&self) -> bool {
        self.segments.contains(&Segment::Each)
    }

    /// Calls `found` with every value the path reaches in `root`, in document order. Null values
    /// are passed on (a matcher treats them as absent).
    pub fn for_each<'v>(&self, root: &'v Value, found: &mut impl FnMut(&'v Value)) {
        walk(&self.segments, root, found);
    }

    /// The first value the path reaches, if any, null included.
    pub fn first<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut first = None;
        self.for_each(root, &mut |v| {
            if first.is_none() {
                first = Some(v);
            }
        });
        first
    }
}

fn walk<'v>(segments: &[Segment], value: &'v Value, found: &mut impl FnMut(&'v Value)) {
    let Some((head, tail)) = segments.split_first() else {
        found(value);
        return;
    };
    match head {
        Segment::Key(key) => {
            if let Some(next) = value.as_object().and_then(|o| o.get(key)) {
                walk(tail, next, found);
            }
        }
        Segment::Each => {
            if let Some(items) = value.as_array() {
                for item in items {
                    walk(tail, item, found);
                }
            }
        }
    }
}

/// Reads a `"`-terminated key with `\"` and `\\` escapes; returns the key and the text after
/// the closing quote.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut key = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((key, &text[i + 1..])),
            '\\' => key.push(chars.next()?.1),
            c => key.push(c),
        }
    }
    None
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Each => f.write_str("[*]")?,
                Segment::Key(key) if key.contains(['.', '[', ']', '"', '\\']) || key.is_empty() => {
                    f.write_str("[\"")?;
                    for c in key.chars() {
                        if matches!(c, '"' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"]")?;
                }
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn values<'v>(path: &str, root: &'v Value) -> Vec<&'v Value> {
        let mut out = Vec::new();
        FieldPath::parse(path)
            .unwrap()
            .for_each(root, &mut |v| out.push(v));
        out
    }

    #[test]
    fn parses_dots_each_and_quoted_keys() {
        let p = FieldPath::parse(r#"metadata.annotations["cert-manager.io/issuer"]"#).unwrap();
        assert_eq!(
            p.segments(),
            [
                Segment::Key("metadata".into()),
                Segment::Key("annotations".into()),
                Segment::Key("cert-manager.io/issuer".into()),
            ]
        );
        let p = FieldPath::parse("spec.rules[*].backendRefs[*]").unwrap();
        assert_eq!(p.segments().len(), 5);
        assert!(p.has_each());
        let p = FieldPath::parse(r#"["a\"b"].c"#).unwrap();
        assert_eq!(p.segments()[0], Segment::Key("a\"b".into()));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "spec.secretName",
            "spec.rules[*].backendRefs[*]",
            r#"metadata.annotations["cert-manager.io/issuer"]"#,
            r#"["a.b"][*].c"#,
        ] {
            let p = FieldPath::parse(text).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!(FieldPath::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn rejects_bad_syntax_with_a_reason() {
        for (bad, reason) in [
            ("", "empty path"),
            ("spec..name", "empty segment"),
            ("spec.", "trailing `.`"),
            (".spec", "empty segment"),
            ("spec[0]", "a bracket holds"),
            ("[*]", "`[*]` must follow a key"),
            ("spec.[*]", "must follow a key, not a dot"),
            (r#"a["b"#, "unclosed quote"),
            (r#"a["b"x"#, "followed by `]`"),
            (r#"a[""]"#, "empty quoted key"),
            ("spec.secret name", "unexpected ' '"),
            ("a[*]b", "expected `.` or `[`"),
        ] {
            let err = FieldPath::parse(bad).unwrap_err();
            assert!(err.reason.contains(reason), "{bad:?}: {}", err.reason);
        }
    }

    #[test]
    fn reads_every_element_and_skips_odd_types() {
        let obj = json!({"spec": {"rules": [
            {"backendRefs": [{"name": "a"}, {"name": "b"}]},
            {"backendRefs": "not a list"},
            {"nothing": 1},
            {"backendRefs": [{"name": "c"}]}
        ]}});
        let names: Vec<_> = values("spec.rules[*].backendRefs[*].name", &obj);
        assert_eq!(names, [&json!("a"), &json!("b"), &json!("c")]);
        assert!(values("spec.rules.backendRefs", &obj).is_empty());
        assert!(values("spec[*]", &obj).is_empty());
        assert!(values("missing.deeper", &obj).is_empty());
        assert_eq!(values("spec.rules[*].nothing", &obj), [&json!(1)]);
    }
}
