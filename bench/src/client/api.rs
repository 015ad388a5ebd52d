//! REST calls over HTTP/1.1 (hyper's client on one connection per call).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use serde_json::{Value, json};

use super::error::ClientError;
use super::replica::Snapshot;

/// An account with a session token.
#[derive(Debug, Clone)]
pub struct Account {
    /// User id.
    pub id: u32,
    /// Name.
    pub username: String,
    /// `user` or `admin`.
    pub role: String,
    /// Session token (send as `Authorization: Bearer`).
    pub token: String,
}

/// The server's REST API.
#[derive(Debug, Clone)]
pub struct Api {
    addr: SocketAddr,
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Api {
    /// The API of the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and reads the whole response.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<RawResponse, ClientError> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder().method(method).uri(path).header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender.send_request(req).await.map_err(|e| ClientError::Http(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| ClientError::Http(e.to_string()))?.to_bytes();
        Ok(RawResponse { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    /// A JSON request; returns the status and the parsed body (`null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ClientError> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let payload = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
        let r = self.raw(method, path, &headers, payload).await?;
        let value =
            if r.body.is_empty() { Value::Null } else { serde_json::from_slice(&r.body).unwrap_or(Value::Null) };
        Ok((r.status, value))
    }

    /// Like [`Api::call`], failing unless the status is 2xx.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let (status, value) = self.call(method, path, token, body).await?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Status { status, body: value.to_string() });
        }
        Ok(value)
    }

    fn account(v: &Value) -> Result<Account, ClientError> {
        let bad = || ClientError::Protocol(format!("unexpected account answer {v}"));
        Ok(Account {
            id: v["user"]["id"].as_u64().ok_or_else(bad)? as u32,
            username: v["user"]["username"].as_str().ok_or_else(bad)?.to_owned(),
            role: v["user"]["role"].as_str().ok_or_else(bad)?.to_owned(),
            token: v["token"].as_str().ok_or_else(bad)?.to_owned(),
        })
    }

    /// Creates an account and logs in.
    pub async fn signup(&self, username: &str, password: &str) -> Result<Account, ClientError> {
        let v = self.ok("POST", "/signup", None, Some(&json!({ "username": username, "password": password }))).await?;
        Self::account(&v)
    }

    /// Logs in.
    pub async fn login(&self, username: &str, password: &str) -> Result<Account, ClientError> {
        let v = self.ok("POST", "/login", None, Some(&json!({ "username": username, "password": password }))).await?;
        Self::account(&v)
    }

    /// Creates a room; returns its id.
    pub async fn create_room(&self, token: &str, name: &str) -> Result<u32, ClientError> {
        let v = self.ok("POST", "/rooms", Some(token), Some(&json!({ "name": name }))).await?;
        v["id"].as_u64().map(|id| id as u32).ok_or_else(|| ClientError::Protocol(format!("unexpected room answer {v}")))
    }

    /// Downloads and parses the canvas snapshot (gzip accepted).
    pub async fn snapshot(&self) -> Result<Snapshot, ClientError> {
        let r = self.raw("GET", "/canvas/snapshot", &[("accept-encoding", "gzip")], Vec::new()).await?;
        if r.status != 200 {
            return Err(ClientError::Status { status: r.status, body: String::from_utf8_lossy(&r.body).into_owned() });
        }
        let gz = r.headers.get("content-encoding").is_some_and(|v| v.as_bytes() == b"gzip");
        let raw = if gz {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut out)?;
            out
        } else {
            r.body.to_vec()
        };
        Snapshot::parse(&raw)
    }
}
