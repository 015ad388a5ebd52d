//! Starts a real server on 127.0.0.1 port 0 with a temporary data directory.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

pub mod cluster;
pub mod postgres;

use pixelparty_bench::client::{Account, Api, ConnectOptions, Connection, Event};
use pixelparty_gateway::config::Config;
use pixelparty_gateway::server::Server;
use pixelparty_storage::testing::{TestDb, postgres_wanted};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub api: Api,
    pub admin: SocketAddr,
    pub admin_token: String,
    tweak: fn(&mut Config),
    /// The test's PostgreSQL database, when the suite runs on that backend
    /// (`PIXELPARTY_TEST_BACKEND=postgres`); dropped after the server.
    pg: Option<TestDb>,
}

fn config(dir: &std::path::Path, tweak: fn(&mut Config), pg: Option<&TestDb>) -> Config {
    let mut c = Config::loopback(dir);
    if let Some(db) = pg {
        c.storage.backend = "postgres".into();
        c.storage.postgres_url = db.url();
        c.storage.pool_size = 4;
    }
    c.server.admin_token = Some("test-admin-token".into());
    c.server.snapshot_refresh_ms = 50;
    c.canvas.width = 256;
    c.canvas.height = 256;
    c.canvas.tile_size = 64;
    c.canvas.cooldown_ms = 0;
    c.limits.chat_interval_ms = 0;
    c.auth.login_per_ip_per_min = 1000;
    c.auth.signup_per_ip_per_hour = 1000;
    tweak(&mut c);
    c
}

/// A server on the backend the suite runs on (see [`postgres_wanted`]).
pub fn start(tweak: fn(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let pg = if postgres_wanted() {
        Some(TestDb::create_blocking().expect("PIXELPARTY_TEST_BACKEND=postgres needs a PostgreSQL server"))
    } else {
        None
    };
    let server = Server::start(config(dir.path(), tweak, pg.as_ref())).expect("server starts");
    TestServer {
        api: Api::new(server.http_addr),
        admin: server.admin_addr,
        admin_token: "test-admin-token".into(),
        server: Some(server),
        dir,
        tweak,
        pg,
    }
}

impl TestServer {
    pub fn app(&self) -> &std::sync::Arc<pixelparty_gateway::app::App> {
        &self.server.as_ref().unwrap().app
    }

    pub fn addr(&self) -> SocketAddr {
        self.api.addr()
    }

    /// Stops the server and starts a new one on the same data directory.
    pub fn restart(mut self) -> Self {
        self.server.take().unwrap().shutdown();
        let server = Server::start(config(self.dir.path(), self.tweak, self.pg.as_ref())).expect("server restarts");
        self.api = Api::new(server.http_addr);
        self.admin = server.admin_addr;
        self.server = Some(server);
        self
    }

    pub async fn user(&self, name: &str) -> Account {
        self.api.signup(name, PASSWORD).await.unwrap()
    }

    pub async fn admin_user(&self, name: &str) -> Account {
        self.user(name).await;
        self.admin_call("POST", "/users/role", json!({ "username": name, "role": "admin" })).await;
        self.api.login(name, PASSWORD).await.unwrap()
    }

    pub async fn connect(&self, account: &Account) -> Connection {
        Connection::connect(self.addr(), &account.token, ConnectOptions::default()).await.unwrap()
    }

    /// Calls the admin endpoint; panics unless 2xx.
    pub async fn admin_call(&self, method: &str, path: &str, body: Value) -> Value {
        let api = Api::new(self.admin);
        let body = (!body.is_null()).then_some(body);
        api.ok(method, path, Some(&self.admin_token), body.as_ref()).await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

pub fn ack_of(req: u32) -> impl FnMut(&Event) -> Option<u64> {
    move |e| match e {
        Event::Ack { req: r, value } if *r == req => Some(*value),
        Event::Error { req: r, code, .. } if *r == req => panic!("request {req} refused: {code:?}"),
        _ => None,
    }
}

pub fn error_of(req: u32) -> impl FnMut(&Event) -> Option<pixelparty_protocol::ErrorCode> {
    move |e| match e {
        Event::Error { req: r, code, .. } if *r == req => Some(*code),
        Event::Ack { req: r, .. } if *r == req => panic!("request {req} unexpectedly accepted"),
        _ => None,
    }
}

/// Starts the `pixelparty` binary on a configuration file and returns once it says it is
/// running (its stdout is drained from then on; its stderr is dropped).
pub fn spawn_binary(config: &std::path::Path) -> std::process::Child {
    spawn_binary_with_env(config, &[])
}

/// [`spawn_binary`] with these environment variables set.
pub fn spawn_binary_with_env(config: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pixelparty"))
        .args(["serve", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("server binary starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("pixelparty is running"))), "server did not start");
    std::thread::spawn(move || for _ in lines {});
    child
}
