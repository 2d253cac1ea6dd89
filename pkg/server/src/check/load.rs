//! Reading manifests: files, directories (recursively, `*.yaml`, `*.yml`, `*.json`) and stdin
//! (`-`); multi-document YAML, JSON, and `List` kinds. Each object keeps the file and line it
//! starts at; a document that does not read is an [`InputError`] naming its file and line.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object of the input, with where it starts.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file (`<stdin>` for standard input).
    pub file: String,
    /// The line its document starts at (1-based).
    pub line: usize,
    /// The object.
    pub value: Value,
}

/// Input that cannot be read or is not Kubernetes objects.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct InputError {
    /// The file.
    pub file: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl InputError {
    fn new(file: &str, line: Option<usize>, reason: impl Into<String>) -> Self {
        InputError {
            file: file.to_owned(),
            line,
            reason: reason.into(),
        }
    }
}

/// The objects of every input, in order (a directory's files sorted by path).
///
/// # Errors
/// The first input that cannot be read or parsed.
pub fn load(inputs: &[String]) -> Result<Vec<Document>, InputError> {
    let mut out = Vec::new();
    for input in inputs {
        if input == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| InputError::new("<stdin>", None, e.to_string()))?;
            parse_into("<stdin>", &text, false, &mut out)?;
            continue;
        }
        let path = Path::new(input);
        let meta =
            std::fs::metadata(path).map_err(|e| InputError::new(input, None, e.to_string()))?;
        let files = if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files).map_err(|e| InputError::new(input, None, e.to_string()))?;
            files.sort();
            files
        } else {
            vec![path.to_owned()]
        };
        for file in files {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| InputError::new(&name, None, e.to_string()))?;
            let json = file.extension().is_some_and(|e| e == "json");
            parse_into(&name, &text, json, &mut out)?;
        }
    }
    Ok(out)
}

/// The manifest files under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses `text` (JSON when `json` or when it starts with `{`, else YAML documents) into
/// objects.
///
/// # Errors
/// A document that does not parse, or is not an object with `apiVersion` and `kind`.
pub fn parse_into(
    file: &str,
    text: &str,
    json: bool,
    out: &mut Vec<Document>,
) -> Result<(), InputError> {
    if json || text.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| InputError::new(file, Some(e.line()), e.to_string()))?;
        return push_object(file, 1, value, out);
    }
    for (line, doc) in documents(text) {
        let value: Value = match serde_saphyr::from_str(doc) {
            Ok(v) => v,
            Err(e) => {
                let at = e
                    .location()
                    .map(|l| usize::try_from(l.line()).unwrap_or(0))
                    .filter(|l| *l > 0);
                let reason = e.to_string().lines().next().unwrap_or_default().to_owned();
                return Err(InputError::new(
                    file,
                    Some(line + at.map_or(0, |l| l.saturating_sub(1))),
                    reason,
                ));
            }
        };
        if value.is_null() {
            continue; // an empty document
        }
        push_object(file, line, value, out)?;
    }
    Ok(())
}

/// The YAML documents of `text` (split at `---` lines), each with the line it starts at.
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs
}

/// Adds `value` (an object, or the items of a `List`).
fn push_object(
    file: &str,
    line: usize,
    value: Value,
    out: &mut Vec<Document>,
) -> Result<(), InputError> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if value.get("apiVersion").and_then(Value::as_str).is_none() || kind.is_empty() {
        return Err(InputError::new(
            file,
            Some(line),
            "not a Kubernetes object: it needs apiVersion and kind",
        ));
    }
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
        let Some(items) = value.get("items").and_then(Value::as_array) else {
            return Err(InputError::new(
                file,
                Some(line),
                format!("{kind} without items"),
            ));
        };
        for item in items {
            push_object(file, line, item.clone(), out)?;
        }
        return Ok(());
    }
    if value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(InputError::new(
            file,
            Some(line),
            format!("{kind} without metadata.name"),
        ));
    }
    out.push(Document {
        file: file.to_owned(),
        line,
        value,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Document>, InputError> {
        let mut out = Vec::new();
        parse_into("f.yaml", text, false, &mut out).map(|()| out)
    }

    #[test]
    fn documents_keep_their_lines_and_lists_are_expanded() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\n# c\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- {apiVersion: v1, kind: Service, metadata: {name: v}}\n";
        let docs = parse(text).unwrap();
        let got: Vec<(usize, &str)> = docs
            .iter()
            .map(|d| (d.line, d.value["kind"].as_str().unwrap()))
            .collect();
        assert_eq!(got, [(1, "ConfigMap"), (7, "Secret"), (7, "Service")]);
    }

    #[test]
    fn a_malformed_document_names_its_file_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: [unclosed\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.file, "f.yaml");
        assert!(err.line.is_some_and(|l| (5..=8).contains(&l)), "{err}");
        let err = parse("apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.reason.contains("apiVersion and kind"), "{err}");
        let mut out = Vec::new();
        let err = parse_into(
            "x.json",
            "{\"apiVersion\": \"v1\",\n \"kind\": }",
            true,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }
}
