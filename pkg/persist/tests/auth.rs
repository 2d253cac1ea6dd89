#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A password with URL-special characters reaches a real redis-server that requires it, and a
//! refused or missing password is named an authentication failure.

use astrolabe_persist::{AuthFailure, PersistError, RedisConfig, RedisLog, RedisTarget};
use astrolabe_testkit::RedisServer;

/// Every character a hand-written URL would have to escape.
const PASSWORD: &str = "p@ss:w/rd %41 with spaces%";

fn log_for(server: &RedisServer, password: Option<&str>, url: Option<String>) -> RedisLog {
    let target = RedisTarget {
        url,
        addr: format!("127.0.0.1:{}", server.port()),
        password: password.map(str::to_owned),
        db: Some(3),
        ..RedisTarget::default()
    };
    let connection = target.connection_info().unwrap();
    assert_eq!(connection.redis_settings().password(), password);
    assert_eq!(connection.redis_settings().db(), 3);
    RedisLog::new(&RedisConfig::new(connection, "auth")).unwrap()
}

#[tokio::test]
async fn a_password_with_special_characters_authenticates() {
    let server = RedisServer::start().unwrap();
    server.require_password(PASSWORD).unwrap();

    log_for(&server, Some(PASSWORD), None).ping().await.unwrap();
    // The password flag fills in what a URL without one lacks.
    let url = format!("redis://127.0.0.1:{}", server.port());
    log_for(&server, Some(PASSWORD), Some(url))
        .ping()
        .await
        .unwrap();

    assert!(log_for(&server, None, None).ping().await.is_err());
    assert!(log_for(&server, Some("p@ss"), None).ping().await.is_err());
}

/// A log on `server` with `password` (none: no AUTH) and database `db`.
fn log_with(server: &RedisServer, password: Option<&str>, db: u32) -> RedisLog {
    let target = RedisTarget {
        addr: format!("127.0.0.1:{}", server.port()),
        password: password.map(str::to_owned),
        db: Some(db),
        ..RedisTarget::default()
    };
    RedisLog::new(&RedisConfig::new(target.connection_info().unwrap(), "auth")).unwrap()
}

#[tokio::test]
async fn refused_credentials_are_named_authentication_failures() {
    let server = RedisServer::start().unwrap();
    server.require_password(PASSWORD).unwrap();
    let failure = |e: PersistError| {
        assert!(e.is_transient(), "{e:?}");
        e.auth_failure()
    };

    // WRONGPASS.
    let wrong = log_with(&server, Some("wrong"), 0)
        .ping()
        .await
        .unwrap_err();
    assert_eq!(failure(wrong), Some(AuthFailure::PasswordRefused));
    // NOAUTH, on the first command or on the SELECT sent while connecting.
    for db in [0, 3] {
        let missing = log_with(&server, None, db).ping().await.unwrap_err();
        assert_eq!(
            failure(missing),
            Some(AuthFailure::PasswordMissing),
            "db {db}"
        );
    }
    // `-ERR AUTH <password> called without any password configured`.
    let open = RedisServer::start().unwrap();
    let needless = log_with(&open, Some("x"), 0).ping().await.unwrap_err();
    assert_eq!(failure(needless), Some(AuthFailure::PasswordRefused));
    // Not an authentication failure: nobody listening.
    drop(open);
    let gone = log_with(&server, None, 0);
    drop(server);
    assert_eq!(gone.ping().await.unwrap_err().auth_failure(), None);
}
