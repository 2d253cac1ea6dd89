//! Where Redis is: a [`redis::ConnectionInfo`] assembled from a URL, or from an address, a
//! password and a database, with the redis crate's own types (no URL is built by hand, so a
//! password may hold any character).

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::error::{PersistError, Result};

/// The parts a Redis connection is configured from (the server's `--redis-*` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTarget {
    /// `redis://` or `rediss://` URL, optionally with `:password@` and `/db`. Takes precedence
    /// over [`RedisTarget::addr`].
    pub url: Option<String>,
    /// `host:port`, used when there is no URL.
    pub addr: String,
    /// Password (AUTH), used when the URL carries none.
    pub password: Option<String>,
    /// Database number, used when the URL names none.
    pub db: Option<u32>,
}

impl RedisTarget {
    /// The connection info: the URL's, else a plain connection to `addr`; the password and
    /// database fill in what the URL does not say (an empty password counts as none).
    ///
    /// # Errors
    /// [`PersistError::Connect`] for a malformed URL or address.
    pub fn connection_info(&self) -> Result<ConnectionInfo> {
        let (info, db_given) = match &self.url {
            Some(url) => {
                let parsed = redis::parse_redis_url(url);
                let db_given = parsed
                    .as_ref()
                    .is_some_and(|u| !u.path().trim_start_matches('/').is_empty());
                (url.as_str().into_connection_info(), db_given)
            }
            None => (
                format!("redis://{}", self.addr).into_connection_info(),
                false,
            ),
        };
        let info = info.map_err(PersistError::Connect)?;
        let mut settings = info.redis_settings().clone();
        if settings.password().is_none()
            && let Some(password) = self.password.as_deref().filter(|p| !p.is_empty())
        {
            settings = settings.set_password(password);
        }
        if !db_given && let Some(db) = self.db {
            settings = settings.set_db(i64::from(db));
        }
        Ok(info.set_redis_settings(settings))
    }
}

#[cfg(test)]
mod tests {
    use redis::ConnectionAddr;

    use super::*;

    fn target(url: Option<&str>, addr: &str, pw: Option<&str>, db: Option<u32>) -> ConnectionInfo {
        RedisTarget {
            url: url.map(str::to_owned),
            addr: addr.to_owned(),
            password: pw.map(str::to_owned),
            db,
        }
        .connection_info()
        .unwrap()
    }

    fn parts(info: &ConnectionInfo) -> (String, Option<&str>, i64) {
        let addr = match info.addr() {
            ConnectionAddr::Tcp(h, p) => format!("redis://{h}:{p}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
            other => format!("{other:?}"),
        };
        let settings = info.redis_settings();
        (addr, settings.password(), settings.db())
    }

    #[test]
    fn the_address_and_the_flags_make_the_connection() {
        let info = target(None, "r:6379", None, None);
        assert_eq!(parts(&info), ("redis://r:6379".into(), None, 0));
        let password = "p@ss: /%20 x%";
        let info = target(None, "r:6379", Some(password), Some(2));
        assert_eq!(parts(&info), ("redis://r:6379".into(), Some(password), 2));
        assert_eq!(parts(&target(None, "r:1", Some(""), None)).1, None);
    }

    #[test]
    fn the_url_takes_precedence_and_the_flags_fill_what_it_lacks() {
        let info = target(Some("rediss://h:1/3"), "x:2", Some("pw"), Some(5));
        assert_eq!(parts(&info), ("rediss://h:1".into(), Some("pw"), 3));
        let info = target(Some("redis://:a@h:1"), "x:2", Some("pw"), Some(4));
        assert_eq!(parts(&info), ("redis://h:1".into(), Some("a"), 4));
        let info = target(Some("redis://:p%40ss@h:1/"), "x:2", None, Some(6));
        assert_eq!(parts(&info), ("redis://h:1".into(), Some("p@ss"), 6));
    }

    #[test]
    fn a_malformed_url_is_refused() {
        let refused = RedisTarget {
            url: Some("http://h:1".into()),
            ..RedisTarget::default()
        }
        .connection_info();
        assert!(
            matches!(refused, Err(PersistError::Connect(_))),
            "{refused:?}"
        );
    }
}
