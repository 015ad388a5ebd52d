//! TLS to the shared services (as managed Redis and PostgreSQL require): two nodes reach a
//! PostgreSQL and a Redis of the test's own that speak TLS with a certificate of a private CA
//! (`sslmode=require`, `rediss://`, the CA given as `postgres_ca_file` and `redis_ca_file`),
//! paint through Redis's cooldown script and see each other's paints; PostgreSQL shows their
//! connections encrypted. Without the CA, a node refuses to start (the certificate is
//! verified), with the reason. Skipped without `redis-server` or PostgreSQL's server binaries
//! (failed under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};

use common::cluster::{self, RedisServer, Shape, node_config, start_tls};
use common::postgres::Postgres;
use common::*;

/// A CA, and a certificate it signed for `localhost` and `127.0.0.1`: (CA, certificate, key)
/// as PEM files in `dir`.
fn certificates(dir: &Path) -> [PathBuf; 3] {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "pixelparty test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let paths = [dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key")];
    for (path, pem) in paths.iter().zip([ca_cert.pem(), cert.pem(), key.serialize_pem()]) {
        std::fs::write(path, pem).unwrap();
    }
    // redis-server (root here) and the test read them; PostgreSQL gets its own copies.
    paths
}

/// Runs a node on `config` and expects it to refuse to start; its output.
fn refuses_to_start(config: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pixelparty"))
        .args(["serve", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the node started without trusting the certificate");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{text}");
    text
}

#[tokio::test(flavor = "current_thread")]
async fn a_cluster_reaches_postgres_and_redis_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = certificates(dir.path());
    let Some(pg) =
        Postgres::init_tls(&std::fs::read_to_string(&cert).unwrap(), &std::fs::read_to_string(&key).unwrap())
    else {
        return;
    };
    let Some(redis) = RedisServer::start_tls(cert.clone(), key.clone(), ca.clone()) else { return };
    let pg_url = format!("{}?sslmode=require", pg.url());
    let shape = || Shape { nodes: 2, cooldown_ms: 50, width: 128, tile: 64 };

    // Without the CA, neither service's certificate is trusted: the node says why and stops.
    let plain_redis = RedisServer::start().unwrap();
    let (config, ..) = node_config(dir.path(), 7, &shape(), &plain_redis, &pg_url, None);
    let out = refuses_to_start(&config);
    assert!(out.contains("the database is unreachable"), "{out}");
    let (config, ..) = node_config(dir.path(), 8, &shape(), &redis, &pg.url(), None);
    let out = refuses_to_start(&config);
    assert!(out.contains("cluster.redis_url") && out.contains("certificate"), "{out}");

    let cluster = start_tls(shape(), redis, pg_url, &ca);
    let api: Vec<_> = cluster.nodes.iter().map(|n| pixelparty_bench::client::Api::new(n.http)).collect();
    let alice = api[0].signup("alice", PASSWORD).await.unwrap();
    let bob = api[1].signup("bob", PASSWORD).await.unwrap();
    let mut a = pixelparty_bench::client::Connection::connect(
        cluster.nodes[0].http,
        &alice.token,
        pixelparty_bench::client::ConnectOptions::default(),
    )
    .await
    .unwrap();
    // A paint takes the cooldown in Redis (a script over TLS) and reaches the other node.
    let req = a.paint(3, 4, 5).await.unwrap();
    let seq = a.wait_for(ack_of(req)).await.unwrap();
    let want = std::collections::HashMap::from([(0u32, seq)]);
    let replica = cluster::converged_replica(cluster.nodes[1].http, &bob.token, &want).await;
    assert_eq!(replica.pixel(3, 4), Some(5));
    // A second paint within the cooldown is refused: Redis holds the first.
    let req = a.paint(5, 5, 1).await.unwrap();
    assert_eq!(a.wait_for(error_of(req)).await.unwrap(), pixelparty_protocol::ErrorCode::Cooldown);

    // PostgreSQL saw the nodes' connections encrypted.
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let (encrypted, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(encrypted >= 2, "each node holds TLS connections ({encrypted})");
    assert_eq!(plain, 0, "and no plain one");
    drop(cluster);
}
