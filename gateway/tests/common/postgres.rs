//! A PostgreSQL instance of the test's own (initdb + pg_ctl on a free loopback port), which
//! the test can stop and start under the servers. Needs PostgreSQL's server binaries (Debian
//! `postgresql`); skipped with a reason without them, failed under `CI=true`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// `-c ssl=on`: its data directory holds `server.crt` and `server.key`.
    tls: bool,
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
    pub fn init() -> Option<Self> {
        Self::init_with(None)
    }

    /// An instance that also accepts TLS, with this certificate and key (PEM).
    pub fn init_tls(cert_pem: &str, key_pem: &str) -> Option<Self> {
        Self::init_with(Some((cert_pem, key_pem)))
    }

    fn init_with(tls: Option<(&str, &str)>) -> Option<Self> {
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
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(data.join("server.crt"), cert).unwrap();
            std::fs::write(data.join("server.key"), key).unwrap();
            // The key must be the server user's alone.
            std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(data.join("server.crt"))
                .arg(data.join("server.key"))
                .status();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Self { bin, data, port, tls: tls.is_some(), _dir: dir };
        pg.start();
        Some(pg)
    }

    pub fn start(&self) {
        let mut opts = format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, self.data.display());
        if self.tls {
            opts.push_str(" -c ssl=on");
        }
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
    pub fn stop(&self) {
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

    pub fn url(&self) -> String {
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
