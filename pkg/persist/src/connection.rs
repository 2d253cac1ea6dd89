//! Where Redis is: a [`redis::ConnectionInfo`] assembled from a URL, or from an address, a
//! password and a database, with the redis crate's own types (no URL is built by hand, so a
//! password may hold any character), and the TLS trust and client certificate of a
//! `rediss://` URL ([`RedisTls`], through the crate's [`redis::TlsCertificates`]).

use std::path::{Path, PathBuf};

use redis::{ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

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
    /// TLS settings of a `rediss://` URL.
    pub tls: RedisTls,
    /// Redis Sentinel: the sentinels' `host:port`s. When given, the master is the one they name
    /// [`RedisTarget::sentinel_master`], looked up again after every failover; the URL or
    /// address then only gives the scheme, password, database and TLS settings.
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the master under.
    pub sentinel_master: String,
    /// The sentinels' own password (AUTH), when they ask for one.
    pub sentinel_password: Option<String>,
    /// Redis Cluster: `host:port` of some of its nodes (the client learns the others). When
    /// given, the URL or address only gives the scheme, password (and username) and TLS
    /// settings; the database must be 0.
    pub cluster_nodes: Vec<String>,
}

/// Where a Redis Cluster is ([`RedisTarget::cluster`]): the nodes to ask for the slot map first,
/// with the password, and the TLS settings every node's connection uses.
#[derive(Clone)]
pub struct ClusterTarget {
    /// The nodes given, with the password and username (all alike).
    pub nodes: Vec<ConnectionInfo>,
    /// The CA and client certificate of a TLS cluster, when given.
    pub certs: Option<TlsCertificates>,
    /// Accept any server certificate (`--redis-tls-insecure`).
    pub insecure: bool,
}

impl std::fmt::Debug for ClusterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The certificates' bytes say nothing useful (and a client key is a secret).
        f.debug_struct("ClusterTarget")
            .field("nodes", &self.nodes)
            .field("certs", &self.certs.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// Where the sentinels are and which master to ask them for ([`RedisTarget::sentinel`]).
#[derive(Debug, Clone)]
pub struct SentinelTarget {
    /// One connection per sentinel.
    pub sentinels: Vec<ConnectionInfo>,
    /// The master's name.
    pub master: String,
}

/// How a `rediss://` connection verifies the server and presents itself. Without any of these,
/// the server's certificate must chain to a public root (webpki roots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// PEM bundle of the CA certificates to trust instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs [`RedisTls::client_key`].
    pub client_cert: Option<PathBuf>,
    /// PEM private key of [`RedisTls::client_cert`].
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate (no chain, no hostname check): for tests only; logged
    /// as a warning.
    pub insecure: bool,
}

impl RedisTls {
    /// True when any TLS setting is given.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some()
            || self.client_cert.is_some()
            || self.client_key.is_some()
            || self.insecure
    }

    /// `info` with these settings applied. The files are read and checked here, so a missing
    /// or malformed file is an error at start-up that names it, not a failure at every connect.
    ///
    /// # Errors
    /// [`PersistError::TlsSettings`] when settings are given but `info` is not `rediss://`, or
    /// a client certificate comes without its key (or the reverse);
    /// [`PersistError::TlsFileRead`] / [`PersistError::TlsFileInvalid`] for a file that cannot
    /// be read or holds no PEM certificate (key); [`PersistError::Connect`] when the redis
    /// crate refuses the certificates.
    pub fn apply(&self, info: ConnectionInfo) -> Result<ConnectionInfo> {
        if !self.is_set() {
            return Ok(info);
        }
        let ConnectionAddr::TcpTls { host, port, .. } = info.addr().clone() else {
            return Err(PersistError::TlsSettings(
                "--redis-ca-file, --redis-client-cert, --redis-client-key and \
                 --redis-tls-insecure need a rediss:// URL"
                    .to_owned(),
            ));
        };
        let certificates = self.certificates()?;
        let info = if self.insecure {
            tracing::warn!(
                %host,
                port,
                "redis TLS certificate verification is off (--redis-tls-insecure): for tests only"
            );
            info.set_addr(ConnectionAddr::TcpTls {
                host,
                port,
                insecure: true,
                tls_params: None,
            })
        } else {
            info
        };
        let Some(certificates) = certificates else {
            return Ok(info);
        };
        let client =
            redis::Client::build_with_tls(info, certificates).map_err(PersistError::Connect)?;
        Ok(client.get_connection_info().clone())
    }

    /// The CA and client certificate files' bytes, read and checked (`None` without either).
    ///
    /// # Errors
    /// As [`RedisTls::apply`]'s, for the files.
    pub fn certificates(&self) -> Result<Option<TlsCertificates>> {
        let root_cert = match &self.ca_file {
            Some(path) => Some(read_pem(path, "CA", Pem::Certificates)?),
            None => None,
        };
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read_pem(cert, "client certificate", Pem::Certificates)?,
                client_key: read_pem(key, "client key", Pem::PrivateKey)?,
            }),
            (None, None) => None,
            _ => {
                return Err(PersistError::TlsSettings(
                    "--redis-client-cert and --redis-client-key go together".to_owned(),
                ));
            }
        };
        if root_cert.is_none() && client_tls.is_none() {
            return Ok(None);
        }
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

/// What a TLS file must hold.
#[derive(Clone, Copy)]
enum Pem {
    /// One or more certificates.
    Certificates,
    /// One private key.
    PrivateKey,
}

/// The bytes of `path`, checked to hold what `expected` says.
fn read_pem(path: &Path, what: &'static str, expected: Pem) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|source| PersistError::TlsFileRead {
        what,
        path: path.to_owned(),
        source,
    })?;
    let checked = match expected {
        Pem::Certificates => CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .and_then(|certs| {
                if certs.is_empty() {
                    Err(pem::Error::NoItemsFound)
                } else {
                    Ok(())
                }
            }),
        Pem::PrivateKey => PrivateKeyDer::from_pem_slice(&bytes).map(drop),
    };
    let noun = match expected {
        Pem::Certificates => "certificate",
        Pem::PrivateKey => "private key",
    };
    checked.map_err(|e| PersistError::TlsFileInvalid {
        what,
        path: path.to_owned(),
        detail: format!("no PEM {noun} read from it ({e})"),
    })?;
    Ok(bytes)
}

impl RedisTarget {
    /// The sentinels to ask for the master, when [`RedisTarget::sentinels`] names any: over TLS
    /// (with the same settings) when the URL is `rediss://`.
    ///
    /// # Errors
    /// [`PersistError::SentinelSettings`] without a master name or for a malformed address; the
    /// errors of [`RedisTls::apply`].
    pub fn sentinel(&self) -> Result<Option<SentinelTarget>> {
        if self.sentinels.is_empty() {
            return Ok(None);
        }
        if self.sentinel_master.is_empty() {
            return Err(PersistError::SentinelSettings(
                "--redis-sentinels needs --redis-sentinel-master".to_owned(),
            ));
        }
        let tls = self
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("rediss://"));
        let infos = infos_of(&self.sentinels, tls)
            .map_err(|e| PersistError::SentinelSettings(format!("sentinel address {e}")))?;
        let mut sentinels = Vec::with_capacity(infos.len());
        for info in infos {
            let info = match self.sentinel_password.as_deref().filter(|p| !p.is_empty()) {
                Some(password) => {
                    let settings = info.redis_settings().clone().set_password(password);
                    info.set_redis_settings(settings)
                }
                None => info,
            };
            sentinels.push(if tls { self.tls.apply(info)? } else { info });
        }
        Ok(Some(SentinelTarget {
            sentinels,
            master: self.sentinel_master.clone(),
        }))
    }

    /// The Redis Cluster to use, when [`RedisTarget::cluster_nodes`] names any: each node with
    /// the password (and username) of [`RedisTarget::connection_info`], over TLS with the same
    /// settings when the URL is `rediss://`.
    ///
    /// # Errors
    /// [`PersistError::ClusterSettings`] together with sentinels, with a database other than 0,
    /// or for a malformed node address; the errors of [`RedisTarget::connection_info`].
    pub fn cluster(&self) -> Result<Option<ClusterTarget>> {
        if self.cluster_nodes.is_empty() {
            return Ok(None);
        }
        if !self.sentinels.is_empty() {
            return Err(PersistError::ClusterSettings(
                "--redis-cluster-nodes and --redis-sentinels exclude each other: \
                 a Redis Cluster fails over by itself"
                    .to_owned(),
            ));
        }
        let base = self.connection_info()?;
        let settings = base.redis_settings();
        if settings.db() != 0 {
            return Err(PersistError::ClusterSettings(format!(
                "a Redis Cluster has database 0 only, not {} (--redis-db or the URL's path \
                 with --redis-cluster-nodes)",
                settings.db()
            )));
        }
        let tls = matches!(base.addr(), ConnectionAddr::TcpTls { .. });
        let nodes = infos_of(&self.cluster_nodes, tls).map_err(|e| {
            PersistError::ClusterSettings(format!("--redis-cluster-nodes address {e}"))
        })?;
        Ok(Some(ClusterTarget {
            nodes: nodes
                .into_iter()
                .map(|info| info.set_redis_settings(settings.clone()))
                .collect(),
            certs: if tls { self.tls.certificates()? } else { None },
            insecure: tls && self.tls.insecure,
        }))
    }

    /// The connection info: the URL's, else a plain connection to `addr`; the password and
    /// database fill in what the URL does not say (an empty password counts as none).
    ///
    /// The TLS settings ([`RedisTarget::tls`]) are applied last ([`RedisTls::apply`]).
    ///
    /// # Errors
    /// [`PersistError::Connect`] for a malformed URL or address; the errors of
    /// [`RedisTls::apply`].
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
        self.tls.apply(info.set_redis_settings(settings))
    }
}

/// The `redis://` (with `tls`: `rediss://`) connection of each `host:port` in `addrs`; else the
/// first malformed one and why.
fn infos_of(addrs: &[String], tls: bool) -> std::result::Result<Vec<ConnectionInfo>, String> {
    let scheme = if tls { "rediss" } else { "redis" };
    addrs
        .iter()
        .map(|addr| {
            format!("{scheme}://{addr}")
                .into_connection_info()
                .map_err(|e| format!("{addr:?}: {e}"))
        })
        .collect()
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
            ..RedisTarget::default()
        }
        .connection_info()
        .unwrap()
    }

    #[test]
    fn sentinels_need_a_master_name_and_take_their_own_password() {
        let none = RedisTarget::default();
        assert!(none.sentinel().unwrap().is_none());
        let nameless = RedisTarget {
            sentinels: vec!["10.0.0.1:26379".into()],
            ..RedisTarget::default()
        };
        assert!(matches!(
            nameless.sentinel(),
            Err(PersistError::SentinelSettings(_))
        ));
        let named = RedisTarget {
            sentinels: vec!["10.0.0.1:26379".into(), "10.0.0.2:26379".into()],
            sentinel_master: "mymaster".into(),
            sentinel_password: Some("s3cret".into()),
            password: Some("master-password".into()),
            ..RedisTarget::default()
        };
        let sentinel = named.sentinel().unwrap().unwrap();
        assert_eq!(sentinel.master, "mymaster");
        let (addr, pw, _) = parts(&sentinel.sentinels[1]);
        assert_eq!(
            (addr.as_str(), pw),
            ("redis://10.0.0.2:26379", Some("s3cret"))
        );
        let bad = RedisTarget {
            sentinels: vec!["not an address:x".into()],
            ..named
        };
        assert!(bad.sentinel().is_err());
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

    fn tls_target(url: &str, tls: RedisTls) -> Result<ConnectionInfo> {
        RedisTarget {
            url: Some(url.to_owned()),
            tls,
            ..RedisTarget::default()
        }
        .connection_info()
    }

    #[test]
    fn the_tls_files_are_read_at_configuration_and_named_when_bad() {
        let pki = astrolabe_testkit::TestPki::generate().unwrap();
        let not_pem = pki.dir().join("not-pem.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let missing = pki.dir().join("missing.pem");
        let ca = |path: &Path| RedisTls {
            ca_file: Some(path.to_owned()),
            ..RedisTls::default()
        };

        let info = tls_target("rediss://h:1", ca(&pki.path("ca.pem"))).unwrap();
        assert!(matches!(
            info.addr(),
            ConnectionAddr::TcpTls {
                insecure: false,
                tls_params: Some(_),
                ..
            }
        ));

        let err = tls_target("rediss://h:1", ca(&missing)).unwrap_err();
        assert!(
            matches!(err, PersistError::TlsFileRead { what: "CA", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = tls_target("rediss://h:1", ca(&not_pem)).unwrap_err();
        assert!(
            matches!(err, PersistError::TlsFileInvalid { what: "CA", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("not-pem.txt"), "{err}");

        // A certificate is not a key.
        let key_is_a_cert = RedisTls {
            client_cert: Some(pki.path("client.pem")),
            client_key: Some(pki.path("client.pem")),
            ..RedisTls::default()
        };
        let err = tls_target("rediss://h:1", key_is_a_cert).unwrap_err();
        assert!(
            matches!(
                err,
                PersistError::TlsFileInvalid {
                    what: "client key",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn tls_settings_that_do_not_fit_are_refused() {
        let insecure = RedisTls {
            insecure: true,
            ..RedisTls::default()
        };
        let info = tls_target("rediss://h:1", insecure.clone()).unwrap();
        assert!(matches!(
            info.addr(),
            ConnectionAddr::TcpTls { insecure: true, .. }
        ));
        let err = tls_target("redis://h:1", insecure).unwrap_err();
        assert!(matches!(err, PersistError::TlsSettings(_)), "{err:?}");
        let half = RedisTls {
            client_cert: Some("/c.pem".into()),
            ..RedisTls::default()
        };
        let err = tls_target("rediss://h:1", half).unwrap_err();
        assert!(matches!(err, PersistError::TlsSettings(_)), "{err:?}");
    }

    #[test]
    fn cluster_nodes_take_the_password_and_the_tls_settings() {
        assert!(RedisTarget::default().cluster().unwrap().is_none());
        let plain = RedisTarget {
            addr: "ignored:1".into(),
            password: Some("p@ss: x".into()),
            cluster_nodes: vec!["10.0.0.1:7000".into(), "10.0.0.2:7001".into()],
            ..RedisTarget::default()
        };
        let cluster = plain.cluster().unwrap().unwrap();
        let nodes: Vec<_> = cluster.nodes.iter().map(parts).collect();
        assert_eq!(
            nodes,
            [
                ("redis://10.0.0.1:7000".into(), Some("p@ss: x"), 0),
                ("redis://10.0.0.2:7001".into(), Some("p@ss: x"), 0),
            ]
        );
        assert!(cluster.certs.is_none() && !cluster.insecure);

        let pki = astrolabe_testkit::TestPki::generate().unwrap();
        let tls = RedisTarget {
            url: Some("rediss://:pw@ignored:1".into()),
            tls: RedisTls {
                ca_file: Some(pki.path("ca.pem")),
                insecure: true,
                ..RedisTls::default()
            },
            ..plain
        };
        let cluster = tls.cluster().unwrap().unwrap();
        assert_eq!(
            parts(&cluster.nodes[1]),
            ("rediss://10.0.0.2:7001".into(), Some("pw"), 0)
        );
        assert!(cluster.certs.is_some() && cluster.insecure);
    }

    #[test]
    fn cluster_settings_that_do_not_fit_are_refused_naming_the_flags() {
        let cluster = RedisTarget {
            addr: "127.0.0.1:6379".into(),
            cluster_nodes: vec!["10.0.0.1:7000".into()],
            ..RedisTarget::default()
        };
        let refused = |target: RedisTarget, flag: &str| {
            let err = target.cluster().unwrap_err();
            assert!(matches!(err, PersistError::ClusterSettings(_)), "{err:?}");
            assert!(err.to_string().contains(flag), "{err}");
        };
        refused(
            RedisTarget {
                sentinels: vec!["10.0.0.9:26379".into()],
                ..cluster.clone()
            },
            "--redis-sentinels",
        );
        refused(
            RedisTarget {
                db: Some(2),
                ..cluster.clone()
            },
            "--redis-db",
        );
        refused(
            RedisTarget {
                url: Some("redis://h:1/3".into()),
                ..cluster.clone()
            },
            "database 0 only",
        );
        refused(
            RedisTarget {
                cluster_nodes: vec!["not an address:x".into()],
                ..cluster.clone()
            },
            "--redis-cluster-nodes",
        );
        // Database 0, said explicitly, is fine.
        let zero = RedisTarget {
            db: Some(0),
            ..cluster
        };
        assert_eq!(zero.cluster().unwrap().unwrap().nodes.len(), 1);
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
