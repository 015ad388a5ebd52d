//! The canvas over HTTP: geometry and palette, the binary snapshot (gzip, `ETag`,
//! `Cache-Control`), the PNG export and the pixel inspector.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::error::ApiError;
use super::{Ctx, Resp, empty, json, query, query_num};

fn hex(c: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2])
}

/// `GET /canvas`.
pub fn info(ctx: &Ctx) -> Result<Resp, ApiError> {
    let e = &ctx.app.engine.shared().config;
    let g = e.geometry;
    Ok(json(
        StatusCode::OK,
        &json!({
            "width": g.width(), "height": g.height(), "bpp": g.bpp(), "tile_size": g.tile_size(),
            "tiles_x": g.tiles_x(), "tiles_y": g.tiles_y(),
            "palette": e.palette.iter().map(|c| hex(*c)).collect::<Vec<_>>(),
            "cooldown_ms": e.cooldown_ms, "snapshot_url": "/canvas/snapshot", "ws_url": "/ws",
            "webtransport": ctx.app.wt.as_ref().map(|wt| json!({ "url": wt.url, "cert_hashes": wt.hashes_hex() })),
        }),
    ))
}

fn binary(body: Bytes, content_type: &'static str, etag: &str) -> Resp {
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=1"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn not_modified(req: &Request<Incoming>, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
}

/// `GET /canvas/snapshot`.
pub fn snapshot(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let s = ctx.app.snapshots.latest();
    let etag = format!("\"{}\"", s.version);
    if not_modified(&req, &etag) {
        let mut r = empty(StatusCode::NOT_MODIFIED);
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    let gzip_ok = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    if gzip_ok && !s.gzip.is_empty() {
        let mut r = binary(s.gzip.clone(), "application/octet-stream", &etag);
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return Ok(r);
    }
    Ok(binary(s.raw.clone(), "application/octet-stream", &etag))
}

/// `POST /wt/ticket`: a single-use ticket (valid for a minute) to open a WebTransport session
/// from a page that holds only the HttpOnly session cookie.
pub async fn wt_ticket(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let wt = ctx.app.wt.as_ref().ok_or_else(|| ApiError::not_found("WebTransport is not enabled"))?;
    let ticket = wt.issue_ticket(me.id, me.token_hash).map_err(|_| ApiError::overloaded())?;
    Ok(json(StatusCode::OK, &json!({ "ticket": ticket, "url": wt.url, "cert_hashes": wt.hashes_hex() })))
}

/// `GET /canvas.png`.
pub async fn png(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let palette = &ctx.app.engine.shared().config.palette;
    let (version, bytes) = ctx.app.snapshots.png(palette).await.map_err(|e| ApiError::internal(format!("png: {e}")))?;
    let etag = format!("\"png-{version}\"");
    if not_modified(&req, &etag) {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    Ok(binary(bytes, "image/png", &etag))
}

/// `GET /canvas/pixel?x=&y=`: the current colour, who placed it and when, and its recent
/// history.
pub fn pixel(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let q = query(&req);
    let (x, y): (u32, u32) = (query_num(&q, "x", u32::MAX)?, query_num(&q, "y", u32::MAX)?);
    let g = ctx.app.engine.shared().config.geometry;
    let loc = g.locate(x, y).ok_or_else(|| ApiError::invalid("x and y must be on the canvas"))?;
    let snap = ctx.app.snapshots.latest();
    let colour = pixelparty_protocol::canvas::get_pixel(&snap.snapshot.tiles[loc.tile as usize], g.bpp(), loc.offset);
    let store = &ctx.app.store;
    let history = store.pixel_history(x as u16, y as u16, u64::MAX, 10)?;
    let mut entries = Vec::with_capacity(history.len());
    let name_of = |id: u32| -> Result<String, ApiError> { Ok(store.user(id)?.map(|u| u.name).unwrap_or_default()) };
    for r in &history {
        // A rollback's restore has no painter: it says whose update it undid.
        let entry = match (r.painter(), r.rolled_back()) {
            (Some(id), _) => json!({ "seq": r.seq, "colour": r.colour, "user_id": id, "username": name_of(id)?,
                                     "time_ms": r.time_ms, "restored_by_rollback_of": null }),
            (None, rolled) => json!({ "seq": r.seq, "colour": r.colour, "user_id": null, "username": null,
                                      "time_ms": r.time_ms, "restored_by_rollback_of": rolled.map(|id| json!({ "id": id, "username": name_of(id).unwrap_or_default() })) }),
        };
        entries.push(entry);
    }
    let latest = history.first();
    let user = latest.and_then(|r| r.painter()).map(|id| json!({ "id": id, "username": entries[0]["username"] }));
    Ok(json(
        StatusCode::OK,
        &json!({
            "x": x, "y": y,
            "colour": latest.map_or(colour, |r| r.colour),
            "seq": latest.map(|r| r.seq),
            "user": user,
            "restored_by_rollback_of": latest.map_or(serde_json::Value::Null, |_| entries[0]["restored_by_rollback_of"].clone()),
            "time_ms": latest.map(|r| r.time_ms),
            "history": entries,
        }),
    ))
}
