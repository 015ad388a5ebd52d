//! The server on a PostgreSQL instance this test starts itself (initdb + pg_ctl on a free
//! loopback port), which it then stops and starts again under the server:
//!
//! - unreachable at start: the binary exits with status 69 and says the database is
//!   unreachable;
//! - lost while running: writes that need it answer `503 unavailable` (over WebSocket:
//!   error code `unavailable`), `/readyz` turns 503, and nothing acknowledged before is lost;
//! - back: service resumes by itself (no restart of pixelparty), `/readyz` is 200 again.
//!
//! Waits are for conditions (bounded polls), never for a time. Needs PostgreSQL's server
//! binaries (Debian `postgresql`); skipped with a reason without them, failed under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::postgres::Postgres;
use common::*;
use pixelparty_bench::client::{Api, ClientError};
use pixelparty_gateway::config::Config;
use pixelparty_gateway::server::Server;

/// How long a condition may take to come true before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it holds, for at most [`PATIENCE`].
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn readyz(admin: std::net::SocketAddr) -> u16 {
    Api::new(admin).call("GET", "/readyz", None, None).await.map_or(0, |(status, _)| status)
}

#[test]
fn an_unreachable_database_at_start_is_a_clear_error_and_exit_69() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pixelparty"))
        .args(["serve", "--http", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .args(["--postgres-url", &format!("postgres://postgres@127.0.0.1:{port}/none")])
        .env("PIXELPARTY_WT", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("database is unreachable"), "{stderr}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_lost_database_is_unavailable_then_served_again() {
    let Some(pg) = Postgres::init() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::loopback(dir.path());
    config.storage.backend = "postgres".into();
    config.storage.postgres_url = pg.url();
    config.storage.statement_timeout_ms = 2000;
    config.server.admin_token = Some("t".into());
    config.auth.signup_per_ip_per_hour = 1000;
    config.auth.login_per_ip_per_min = 1000;
    let server = Server::start(config).unwrap();
    let (api, admin) = (Api::new(server.http_addr), server.admin_addr);

    let ann = api.signup("ann", PASSWORD).await.unwrap();
    assert_eq!(readyz(admin).await, 200);

    pg.stop();
    // A write that needs the database: 503 unavailable, said so.
    until("a sign-up refused as unavailable", || async {
        match api.signup("bob", PASSWORD).await {
            Err(ClientError::Status { status: 503, body }) => {
                assert!(body.contains("\"unavailable\""), "{body}");
                true
            }
            Err(ClientError::Status { status, body }) => {
                panic!("only 503 unavailable while the database is away, not {status} {body}")
            }
            Err(_) => false,
            Ok(_) => panic!("a sign-up cannot be acknowledged without the database"),
        }
    })
    .await;
    until("readyz 503", || async { readyz(admin).await == 503 }).await;

    pg.start();
    // Back by itself: the same server serves again.
    until("a sign-up served again", || async { api.signup("bob", PASSWORD).await.is_ok() }).await;
    until("readyz 200", || async { readyz(admin).await == 200 }).await;
    // What was acknowledged before the loss is there.
    let again = api.login("ann", PASSWORD).await.unwrap();
    assert_eq!(again.id, ann.id);
    server.shutdown();
}
