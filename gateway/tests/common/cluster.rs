//! A real cluster for tests: a Redis server of the test's own (a child process on a free
//! port, so it can be killed and restarted), a fresh PostgreSQL database, and N `pixelparty`
//! nodes as separate processes on 127.0.0.1. Skipped (with the reason printed) when
//! `redis-server` or PostgreSQL is missing, except under `CI=true`, where that fails.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pixelparty_storage::testing::TestDb;

use super::spawn_binary;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn skip_or_fail(why: &str) {
    assert!(std::env::var("CI").map_or(true, |v| v != "true"), "{why}");
    eprintln!("skipped: {why}");
}

/// A Redis server that keeps nothing on disk (a restart loses everything, as a failover to an
/// empty replica would).
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// TLS only (`rediss://`): the server's certificate, key, and the CA clients trust.
    pub tls: Option<[PathBuf; 3]>,
}

impl RedisServer {
    pub fn start() -> Option<Self> {
        if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
            skip_or_fail("no redis-server for this test (apt-get install redis-server)");
            return None;
        }
        let mut r = Self { child: None, port: free_port(), tls: None };
        r.spawn();
        Some(r)
    }

    /// A Redis that speaks only TLS, with `cert` and `key` (PEM), signed by `ca`.
    pub fn start_tls(cert: PathBuf, key: PathBuf, ca: PathBuf) -> Option<Self> {
        use std::io::BufRead;
        if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
            skip_or_fail("no redis-server for this test (apt-get install redis-server)");
            return None;
        }
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--port",
                "0",
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-port")
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.by_ref().any(|l| l.is_ok_and(|l| l.contains("Ready to accept connections")));
        assert!(ready, "redis-server with TLS did not start (built without TLS?)");
        std::thread::spawn(move || for _ in lines {});
        Some(Self { child: Some(child), port, tls: Some([cert, key, ca]) })
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--port"])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        // Ready once it accepts a connection and answers PING.
        for _ in 0..500 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not come up on port {}", self.port);
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/0", self.port)
    }

    /// Runs one command (inline form: no argument may hold spaces) and returns the raw reply.
    pub fn command(&self, command: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// SIGKILL: everything Redis held is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A new, empty Redis on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One node process.
pub struct Node {
    child: Option<Child>,
    config: PathBuf,
    pub http: SocketAddr,
    pub admin: SocketAddr,
}

impl Node {
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node already running");
        self.child = Some(spawn_binary(&self.config));
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP (`false`) or SIGCONT (`true`): a node that stops being scheduled, as a long
    /// pause or a cut-off machine would look.
    pub fn pause(&self, resume: bool) {
        let pid = self.child.as_ref().expect("node running").id();
        let signal = if resume { "-CONT" } else { "-STOP" };
        assert!(Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap().success());
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis, PostgreSQL and the nodes. Dropped in order: nodes, then Redis, then the database.
pub struct TestCluster {
    pub nodes: Vec<Node>,
    pub redis: RedisServer,
    /// The nodes' database.
    pub pg_url: String,
    pub db: Option<TestDb>,
    pub dir: tempfile::TempDir,
}

impl TestCluster {
    /// The journal, read whole from PostgreSQL.
    pub async fn journal(&self) -> Vec<pixelparty_storage::PixelRecord> {
        let dir = tempfile::tempdir().unwrap();
        let store = self.store(dir.path());
        let mut out: Vec<pixelparty_storage::PixelRecord> = Vec::new();
        loop {
            let after = out.last().map_or(0, |r| r.seq);
            let page = store.call(move |b| b.journal_after(after, 10_000)).await.unwrap();
            if page.is_empty() {
                break;
            }
            out.extend(page);
        }
        out
    }

    /// A store on the nodes' database (to read what they wrote).
    pub fn store(&self, dir: &std::path::Path) -> pixelparty_storage::Store {
        let mut config = pixelparty_storage::StoreConfig::new(dir);
        config.postgres = Some(pixelparty_storage::PgConfig::new(self.pg_url.clone()));
        pixelparty_storage::Store::open(config).unwrap()
    }
}

/// Settings of a test cluster.
pub struct Shape {
    pub nodes: usize,
    pub cooldown_ms: u32,
    pub width: u16,
    pub tile: u16,
}

/// A cluster on a fresh database of the machine's PostgreSQL.
pub async fn start(shape: Shape) -> Option<TestCluster> {
    let redis = RedisServer::start()?;
    let db = TestDb::create().await?;
    let url = db.url();
    Some(start_with(shape, redis, url, Some(db)))
}

/// A cluster on the database at `pg_url` (a PostgreSQL of the test's own).
pub fn start_on(shape: Shape, pg_url: String) -> Option<TestCluster> {
    let redis = RedisServer::start()?;
    Some(start_with(shape, redis, pg_url, None))
}

/// The configuration file of node `n` (see [`start_with`]); `tls_ca` is trusted for TLS to
/// PostgreSQL and Redis.
pub fn node_config(
    dir: &std::path::Path,
    n: usize,
    shape: &Shape,
    redis: &RedisServer,
    pg_url: &str,
    tls_ca: Option<&std::path::Path>,
) -> (PathBuf, u16, u16) {
    let (http, admin) = (free_port(), free_port());
    let config = dir.join(format!("node{n}.toml"));
    let ca = |key: &str| tls_ca.map(|p| format!("{key} = {:?}\n", p.display().to_string())).unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\nadmin_token = \"t\"\n\
             data_dir = \"{data}\"\nshards = 2\nsnapshot_refresh_ms = 50\nsnapshot_persist_ms = 1000\n\n\
             [webtransport]\nenabled = false\n\n\
             [canvas]\nwidth = {w}\nheight = {w}\ntile_size = {t}\ncooldown_ms = {cd}\nadmin_exempt = false\n\n\
             [limits]\nchat_interval_ms = 0\n\n\
             [auth]\nargon2_m_kib = 1024\nlogin_per_ip_per_min = 10000\nsignup_per_ip_per_hour = 10000\n\n\
             [storage]\nbackend = \"postgres\"\npostgres_url = \"{pg}\"\npool_size = 4\n{pg_ca}\n\
             [cluster]\nredis_url = \"{redis}\"\nnode_id = \"node{n}\"\nkey_prefix = \"t{port}\"\n{redis_ca}\
             redis_timeout_ms = 1500\npoll_ms = 100\ngap_hold_ms = 30\nroom_check_ms = 300\npresence_ms = 300\n",
            data = dir.join(format!("data{n}")).display(),
            w = shape.width,
            t = shape.tile,
            cd = shape.cooldown_ms,
            pg = pg_url,
            pg_ca = ca("postgres_ca_file"),
            redis = redis.url(),
            redis_ca = ca("redis_ca_file"),
            port = redis.port,
        ),
    )
    .unwrap();
    (config, http, admin)
}

/// A cluster whose nodes trust `tls_ca` for TLS to PostgreSQL and Redis.
pub fn start_tls(shape: Shape, redis: RedisServer, pg_url: String, tls_ca: &std::path::Path) -> TestCluster {
    start_with_ca(shape, redis, pg_url, None, Some(tls_ca))
}

fn start_with(shape: Shape, redis: RedisServer, pg_url: String, db: Option<TestDb>) -> TestCluster {
    start_with_ca(shape, redis, pg_url, db, None)
}

fn start_with_ca(
    shape: Shape,
    redis: RedisServer,
    pg_url: String,
    db: Option<TestDb>,
    tls_ca: Option<&std::path::Path>,
) -> TestCluster {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for n in 0..shape.nodes {
        let (config, http, admin) = node_config(dir.path(), n, &shape, &redis, &pg_url, tls_ca);
        let mut node = Node {
            child: None,
            config,
            http: SocketAddr::from(([127, 0, 0, 1], http)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
        };
        node.start();
        nodes.push(node);
    }
    TestCluster { nodes, redis, pg_url, db, dir }
}

/// Follows `ws`'s replica (bounded) until every tile is at `want`; `who` names it in the
/// failure, with the tiles behind.
pub async fn converge(
    ws: &mut pixelparty_bench::client::Connection,
    want: &std::collections::HashMap<u32, u64>,
    who: &str,
) {
    let done = |ws: &pixelparty_bench::client::Connection| {
        let r = ws.replica.as_ref().unwrap();
        want.iter().all(|(&tile, &seq)| r.cursor(tile) == seq)
    };
    let caught_up = tokio::time::timeout(Duration::from_secs(60), async {
        while !done(ws) {
            ws.recv().await.unwrap();
        }
    })
    .await;
    let r = ws.replica.as_ref().unwrap();
    let behind: Vec<(u32, u64, u64)> =
        want.iter().filter(|(t, s)| r.cursor(**t) != **s).map(|(t, s)| (*t, r.cursor(*t), *s)).collect();
    assert!(caught_up.is_ok(), "{who} never converged; (tile, has, want): {behind:?}");
}

/// A client of `node` that loads its snapshot, subscribes with the cursors and waits
/// (bounded) until every tile is at `want` (its newest sequence in the journal); returns its
/// replica.
pub async fn converged_replica(
    node: SocketAddr,
    token: &str,
    want: &std::collections::HashMap<u32, u64>,
) -> pixelparty_bench::client::Replica {
    use pixelparty_bench::client::{Api, ConnectOptions, Connection, Replica};
    let snap = Api::new(node).snapshot().await.unwrap();
    let mut v = Connection::connect(node, token, ConnectOptions::default()).await.unwrap();
    v.track(Replica::from_snapshot(snap));
    v.subscribe_all().await.unwrap();
    converge(&mut v, want, &format!("node {node}")).await;
    v.replica.take().unwrap()
}

/// Every pixel of a `width` × `width` canvas in `replica` has its colour in `pixels` (0 when
/// never painted).
pub fn assert_pixels(
    replica: &pixelparty_bench::client::Replica,
    pixels: &std::collections::HashMap<(u16, u16), u8>,
    width: u16,
    who: &str,
) {
    for y in 0..width {
        for x in 0..width {
            let want = pixels.get(&(x, y)).copied().unwrap_or(0);
            assert_eq!(replica.pixel(u32::from(x), u32::from(y)), Some(want), "{who}: pixel ({x}, {y})");
        }
    }
}

/// Per tile, its newest sequence in `journal`, and the colour of every painted pixel.
pub fn model(
    journal: &[pixelparty_storage::PixelRecord],
    geometry: pixelparty_protocol::Geometry,
) -> (std::collections::HashMap<u32, u64>, std::collections::HashMap<(u16, u16), u8>) {
    let mut want: std::collections::HashMap<u32, u64> = (0..geometry.tile_count()).map(|t| (t, 0)).collect();
    let mut pixels = std::collections::HashMap::new();
    for r in journal {
        pixels.insert((r.x, r.y), r.colour);
        want.insert(geometry.locate(u32::from(r.x), u32::from(r.y)).unwrap().tile, r.seq);
    }
    (want, pixels)
}
