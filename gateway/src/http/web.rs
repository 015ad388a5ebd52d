//! The web client, embedded at build time from `gateway/web/` and served at `/`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{self, HeaderValue};

use super::Resp;
use super::error::ApiError;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Serves an embedded file (`/` is `index.html`).
pub fn asset(path: &str) -> Result<Resp, ApiError> {
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let Some((_, bytes, content_type)) = ASSETS.iter().find(|(p, _, _)| *p == name) else {
        return Err(ApiError::not_found("no such route"));
    };
    let mut r = Response::new(Full::new(Bytes::from_static(bytes)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss: https:; style-src 'self' 'unsafe-inline'"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_codec_and_not_the_tests() {
        assert!(ASSETS.iter().any(|(p, _, _)| *p == "codec.js"));
        assert!(ASSETS.iter().all(|(p, _, _)| !p.starts_with("tests/") && !p.starts_with("package")));
        assert!(ASSETS.iter().all(|(p, _, _)| !p.ends_with(".md")), "the client's README is not served");
        assert!(asset("/codec.js").is_ok());
        assert!(asset("/nope.js").is_err());
    }
}
