//! The Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`) of the objects
//! kubectl's generators send (`kubectl create namespace|configmap|secret|serviceaccount|deployment|
//! service|job|cronjob|role|clusterrole|rolebinding|clusterrolebinding|pdb|ingress`,
//! `kubectl autoscale`), decoded to JSON.
//!
//! kubectl's typed clients send protobuf bodies for built-in kinds and do not fall back to JSON on
//! 415, so the emulator decodes them. The body is the `k8s\0` magic and a `runtime.Unknown`
//! envelope whose `raw` field holds the object. Each message is described by a table of its field
//! numbers (from the `generated.proto` files of `k8s.io/api` and `k8s.io/apimachinery`), limited to
//! the fields those generators set and their neighbours; unknown fields are skipped. Scalars at their
//! zero value and empty messages are dropped, as JSON's `omitempty` would, except the pointer
//! fields marked to keep them (`replicas: 0` stays). Answers are always JSON, which clients accept.

use serde_json::{Map, Value, json};

mod tables;

use tables::{Field, TYPE_META, Ty, f, ptr, table};

use crate::error::{Result, SimError};
use crate::kinds::KindInfo;

/// Appends a length-delimited field (`num`, `bytes`) in protobuf wire format to `out`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, num: u64, bytes: &[u8]) {
    let put_varint = |out: &mut Vec<u8>, mut v: u64| {
        while v >= 0x80 {
            out.push((v & 0x7f) as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    put_varint(out, (num << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Whether protobuf bodies of `info`'s kind are decoded.
#[must_use]
pub fn supports(info: &KindInfo) -> bool {
    table(info).is_some()
}

fn malformed(what: &str) -> SimError {
    SimError::BadRequest(format!("malformed protobuf body: {what}"))
}

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| malformed("truncated varint"))?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(malformed("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(malformed("truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| malformed("length"))?;
        self.take(n)
    }

    /// Skips a field of wire type `wire`.
    fn skip(&mut self, wire: u64) -> Result<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            _ => Err(malformed("unsupported wire type")),
        }
    }
}

fn utf8(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("string is not UTF-8"))
}

fn base64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decodes one value of type `ty` (wire data already read for length-delimited types).
fn value(ty: Ty, wire: u64, r: &mut Reader<'_>) -> Result<Value> {
    Ok(match ty {
        Ty::Int => {
            // int32 and int64 fields: negative values are ten-byte two's complement.
            let v = r.varint()?;
            json!(i64::from_ne_bytes(v.to_ne_bytes()))
        }
        Ty::Bool => json!(r.varint()? != 0),
        Ty::Str if wire == 2 => json!(utf8(r.bytes()?)?),
        Ty::Bytes if wire == 2 => json!(base64(r.bytes()?)),
        Ty::Quantity if wire == 2 => {
            let m = message(&[f(1, "string", Ty::Str)], r.bytes()?)?;
            m.get("string").cloned().unwrap_or(Value::Null)
        }
        Ty::Time if wire == 2 => {
            let m = message(
                &[f(1, "seconds", Ty::Int), f(2, "nanos", Ty::Int)],
                r.bytes()?,
            )?;
            match m.get("seconds").and_then(Value::as_i64) {
                Some(s) if s != 0 => jiff::Timestamp::from_second(s)
                    .map(|t| json!(t.to_string()))
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            }
        }
        Ty::IntOrStr if wire == 2 => {
            let m = message(
                &[
                    f(1, "type", Ty::Int),
                    ptr(2, "intVal", Ty::Int),
                    f(3, "strVal", Ty::Str),
                ],
                r.bytes()?,
            )?;
            if m.get("type").and_then(Value::as_i64) == Some(1) {
                m.get("strVal").cloned().unwrap_or_else(|| json!(""))
            } else {
                m.get("intVal").cloned().unwrap_or_else(|| json!(0))
            }
        }
        Ty::Msg(fields) | Ty::Inline(fields) if wire == 2 => {
            Value::Object(message(fields, r.bytes()?)?)
        }
        _ => return Err(malformed("unexpected wire type")),
    })
}

/// Decodes a message described by `fields`.
fn message(fields: &[Field], buf: &[u8]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut r = Reader { buf };
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        let (num, wire) = (tag >> 3, tag & 7);
        let Some(field) = fields.iter().find(|x| x.num == num) else {
            r.skip(wire)?;
            continue;
        };
        if let Ty::Map(value_ty) = field.ty {
            let entry = r.bytes()?;
            let mut er = Reader { buf: entry };
            let (mut key, mut val) = (String::new(), Value::Null);
            while !er.buf.is_empty() {
                let etag = er.varint()?;
                match etag >> 3 {
                    1 => key = utf8(er.bytes()?)?,
                    2 => val = value(*value_ty, etag & 7, &mut er)?,
                    _ => er.skip(etag & 7)?,
                }
            }
            if val.is_null() {
                val = json!("");
            }
            let map = out
                .entry(field.name)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = map {
                m.insert(key, val);
            }
            continue;
        }
        let v = value(field.ty, wire, &mut r)?;
        if let (Ty::Inline(_), Value::Object(inner)) = (field.ty, &v) {
            out.extend(inner.clone());
        } else if field.repeated {
            if let Value::Array(items) = out.entry(field.name).or_insert_with(|| json!([])) {
                items.push(v);
            }
        } else if field.keep_zero || !is_empty(&v) {
            out.insert(field.name.to_owned(), v);
        }
    }
    Ok(out)
}

/// A value JSON's `omitempty` would leave out.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
    }
}

/// Decodes a protobuf request body for `info`'s kind to its JSON form.
///
/// # Errors
/// [`SimError::UnsupportedMediaType`] for a kind whose protobuf form is not known;
/// [`SimError::BadRequest`] for a malformed body or one of another kind.
pub fn decode(info: &KindInfo, body: &[u8]) -> Result<Value> {
    let fields = table(info).ok_or_else(|| {
        SimError::UnsupportedMediaType("application/vnd.kubernetes.protobuf".into())
    })?;
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| malformed("missing the k8s magic prefix"))?;
    // runtime.Unknown: typeMeta (1), raw (2), contentEncoding (3), contentType (4).
    let mut r = Reader { buf: envelope };
    let (mut type_meta, mut raw): (Map<String, Value>, &[u8]) = (Map::new(), &[]);
    while !r.buf.is_empty() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (1, 2) => type_meta = message(TYPE_META, r.bytes()?)?,
            (2, 2) => raw = r.bytes()?,
            (_, wire) => r.skip(wire)?,
        }
    }
    let kind = type_meta.get("kind").and_then(Value::as_str);
    if kind.is_some_and(|k| k != info.kind) {
        return Err(malformed(&format!(
            "the kind {kind:?} does not match the path ({})",
            info.kind
        )));
    }
    let mut obj = message(fields, raw)?;
    obj.insert("apiVersion".into(), json!(info.api_version()));
    obj.insert("kind".into(), json!(info.kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::lookup;

    #[test]
    fn namespace_from_kubectl() {
        // `kubectl create namespace foo`, as sent by kubectl 1.33.
        let body: &[u8] = b"k8s\x00\x0a\x0f\x0a\x02v1\x12\x09Namespace\x12\x1b\x0a\x13\x0a\x03foo\x12\x00\x1a\x00\x22\x00\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x00\x1a\x02\x0a\x00\x1a\x00\x22\x00";
        let ns = decode(lookup("Namespace").expect("ns"), body).expect("decode");
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
        );
        assert!(decode(lookup("ConfigMap").expect("cm"), body).is_err());
        assert!(decode(lookup("Namespace").expect("ns"), b"k8s\x00\x0a\xff").is_err());
    }

    #[test]
    fn writes_what_it_reads() {
        let mut inner = Vec::new();
        put_bytes(&mut inner, 1, b"x".repeat(200).as_slice());
        let m = message(&[f(1, "name", Ty::Str)], &inner).expect("read");
        assert_eq!(m["name"].as_str().map(str::len), Some(200));
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b"value"), "dmFsdWU=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
    }
}
