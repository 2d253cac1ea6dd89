//! `StaticTokens`: the `--auth-token-file` authorizer. Every token the file lists may read
//! everything; any other token is refused.
//!
//! The file has kube-apiserver's static token file format, one token per line:
//! `token,user[,uid[,"group1,group2"]]`. Astrolabe reads the first two columns and ignores the
//! rest (uid and groups grant nothing more here). Blank lines and lines starting with `#` are
//! skipped. The file is read once, at start; a change takes a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use super::{Access, Authorizer, Decision, Undecided};

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("reading the token file {path} failed")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `token,user[,...]`, or repeats a token.
    #[error("token file {path}, line {line}: {detail}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong (never the token itself).
        detail: String,
    },
    /// The file lists no token, so nothing could ever be served.
    #[error("the token file {0} lists no token")]
    Empty(PathBuf),
}

/// The tokens of a token file and the user each one names.
#[derive(Clone, Default)]
pub struct StaticTokens {
    users: HashMap<String, String>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.users.len())
            .finish()
    }
}

impl StaticTokens {
    /// Reads the token file at `path`.
    ///
    /// # Errors
    /// An unreadable file, a malformed line, a repeated token, or no token at all.
    pub fn read(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ParseError::Line { line, detail } => TokenFileError::Line {
                path: path.to_owned(),
                line,
                detail,
            },
            ParseError::Empty => TokenFileError::Empty(path.to_owned()),
        })
    }

    fn parse(text: &str) -> Result<Self, ParseError> {
        let mut users = HashMap::new();
        let mut first_line = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut columns = line.splitn(3, ',').map(str::trim);
            let token = columns.next().unwrap_or_default();
            let user = columns.next().unwrap_or_default();
            let bad = |detail: &str| ParseError::Line {
                line: n,
                detail: detail.to_owned(),
            };
            if token.is_empty() || user.is_empty() {
                return Err(bad("expected `token,user[,uid[,groups]]`"));
            }
            if token.contains('"') || user.contains('"') {
                return Err(bad("the token and user columns are not quoted"));
            }
            if let Some(earlier) = first_line.insert(token.to_owned(), n) {
                return Err(bad(&format!("repeats the token of line {earlier}")));
            }
            users.insert(token.to_owned(), user.to_owned());
        }
        if users.is_empty() {
            return Err(ParseError::Empty);
        }
        Ok(StaticTokens { users })
    }

    /// How many tokens the file lists.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file lists no token (never true for a file [`read`](Self::read) accepted).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

enum ParseError {
    Line { line: usize, detail: String },
    Empty,
}

impl Authorizer for StaticTokens {
    fn decide<'a>(
        &'a self,
        token: &'a str,
        _access: &'a Access,
    ) -> BoxFuture<'a, Result<Decision, Undecided>> {
        let decision = match self.users.get(token) {
            Some(user) => Decision::Allowed { user: user.clone() },
            None => Decision::Unauthenticated,
        };
        Box::pin(std::future::ready(Ok(decision)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::Method;

    use super::super::Target;
    use super::*;

    fn decide(tokens: &StaticTokens, token: &str) -> Decision {
        let access = Access::new(&Method::GET, Target::Api);
        futures::executor::block_on(tokens.decide(token, &access)).unwrap()
    }

    #[test]
    fn reads_the_kube_apiserver_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(
            &path,
            "# readers\n\nt0k3n,alice,1001,\"dev,ops\"\nother , bob\n",
        )
        .unwrap();
        let tokens = StaticTokens::read(&path).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            decide(&tokens, "t0k3n"),
            Decision::Allowed {
                user: "alice".into()
            }
        );
        assert_eq!(
            decide(&tokens, "other"),
            Decision::Allowed { user: "bob".into() }
        );
        assert_eq!(decide(&tokens, "alice"), Decision::Unauthenticated);
        assert_eq!(decide(&tokens, ""), Decision::Unauthenticated);
    }

    #[test]
    fn bad_files_are_refused_with_the_line_and_without_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        for (text, line) in [
            ("s3cret\n", 1),
            ("a,alice\n,bob\n", 2),
            ("a,alice\n\ns3cret,bob\ns3cret,carol\n", 4),
            ("\"s3cret\",alice\n", 1),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = StaticTokens::read(&path).unwrap_err();
            assert!(
                matches!(err, TokenFileError::Line { line: l, .. } if l == line),
                "{text:?}: {err}"
            );
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(
            StaticTokens::read(&path),
            Err(TokenFileError::Empty(_))
        ));
        assert!(matches!(
            StaticTokens::read(&dir.path().join("missing")),
            Err(TokenFileError::Read { .. })
        ));
    }
}
