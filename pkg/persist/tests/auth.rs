#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A password with URL-special characters reaches a real redis-server that requires it.

use astrolabe_persist::{RedisConfig, RedisLog, RedisTarget};
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
