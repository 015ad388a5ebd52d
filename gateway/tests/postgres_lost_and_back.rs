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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use pixelparty_bench::client::{Api, ClientError};
use pixelparty_gateway::config::Config;
use pixelparty_gateway::server::Server;

/// How long a condition may take to come true before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn skip_or_fail(why: &str) {
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
    eprintln!("skipped: {why}");
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if is_root {
        // PostgreSQL refuses to run as root.
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl Postgres {
    fn init() -> Option<Self> {
        let Some(bin) = ["/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|b| b.join("pg_ctl").exists())
        else {
            skip_or_fail("no PostgreSQL server binaries (apt install postgresql)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).unwrap();
        // Owned by the server's user (it refuses root).
        let _ = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
        let ok = as_postgres(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Self { bin, data, port, _dir: dir };
        pg.start();
        Some(pg)
    }

    fn start(&self) {
        let opts = format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, self.data.display());
        let ok = as_postgres(&self.bin, "pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.data.join("log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl start");
    }

    /// Stops at once (as a crash or a network cut would look to clients).
    fn stop(&self) {
        let ok = as_postgres(&self.bin, "pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

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
