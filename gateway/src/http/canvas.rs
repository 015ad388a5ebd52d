//! The canvas over HTTP: geometry and palette, the binary snapshot (gzip, `ETag`,
//! `Cache-Control`), the PNG export and the pixel inspector.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use super::openapi::{AddressErrors, BinaryBody, BusyErrors, ErrorBody, ReadErrors, SessionErrors, WriteErrors};
use super::{Ctx, Resp, empty, json, query, query_num};

/// Canvas geometry, palette, cooldown and where to connect.
#[derive(Debug, Serialize, ToSchema)]
pub struct CanvasInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per pixel (1, 2, 4 or 8).
    pub bpp: u8,
    /// Side of a square tile, pixels.
    pub tile_size: u16,
    /// Tiles across.
    pub tiles_x: u32,
    /// Tiles down.
    pub tiles_y: u32,
    /// Colours as `#RRGGBB`, indexed by colour number.
    #[schema(example = json!(["#FFFFFF", "#E4E4E4"]))]
    pub palette: Vec<String>,
    /// One paint per user per this many ms.
    pub cooldown_ms: u32,
    /// The binary snapshot: `/canvas/snapshot`.
    pub snapshot_url: &'static str,
    /// The WebSocket endpoint: `/ws`.
    pub ws_url: &'static str,
    /// The WebTransport endpoint, or `null` when it is not enabled.
    #[schema(required = true)]
    pub webtransport: Option<WebTransportInfo>,
}

/// Where and how to open a WebTransport session.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebTransportInfo {
    /// `https://host:port/wt`.
    pub url: String,
    /// SHA-256 of the server's certificates, hex, for `serverCertificateHashes`.
    pub cert_hashes: Vec<String>,
}

/// A single-use WebTransport ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct WtTicket {
    /// Pass as `?ticket=` when opening the session; valid once, for a minute.
    pub ticket: String,
    /// `https://host:port/wt`.
    pub url: String,
    /// SHA-256 of the server's certificates, hex, for `serverCertificateHashes`.
    pub cert_hashes: Vec<String>,
}

/// A user named in the pixel inspector.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRef {
    /// User id.
    pub id: u32,
    /// Name (empty if the account is gone).
    pub username: String,
}

/// One update of a pixel.
#[derive(Debug, Serialize, ToSchema)]
pub struct PixelUpdate {
    /// Global sequence of the update.
    pub seq: u64,
    /// Colour number.
    pub colour: u8,
    /// Who painted it; `null` for a rollback's restore.
    #[schema(required = true)]
    pub user_id: Option<u32>,
    /// Their name; `null` for a rollback's restore.
    #[schema(required = true)]
    pub username: Option<String>,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
    /// For a rollback's restore: the user whose update it undid; else `null`.
    #[schema(required = true)]
    pub restored_by_rollback_of: Option<UserRef>,
}

/// The pixel inspector's answer. The fields about the latest update are `null` for a pixel
/// nobody painted (or whose history is past retention).
#[derive(Debug, Serialize, ToSchema)]
pub struct PixelInfo {
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
    /// Current colour number.
    pub colour: u8,
    /// Sequence of the latest update.
    #[schema(required = true)]
    pub seq: Option<u64>,
    /// Who placed the current colour (`null` when a rollback restored it).
    #[schema(required = true)]
    pub user: Option<UserRef>,
    /// When a rollback restored the current colour: the user whose update it undid.
    #[schema(required = true)]
    pub restored_by_rollback_of: Option<UserRef>,
    /// Time of the latest update, ms since the Unix epoch.
    #[schema(required = true)]
    pub time_ms: Option<u64>,
    /// The latest updates, newest first (at most 10).
    pub history: Vec<PixelUpdate>,
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2])
}

/// Canvas geometry, palette and cooldown
#[utoipa::path(get, path = "/canvas", tag = "canvas", operation_id = "canvas_info",
    responses((status = 200, description = "The canvas", body = CanvasInfo), AddressErrors))]
pub fn info(ctx: &Ctx) -> Result<Resp, ApiError> {
    let e = &ctx.app.engine.shared().config;
    let g = e.geometry;
    Ok(json(
        StatusCode::OK,
        &CanvasInfo {
            width: g.width(),
            height: g.height(),
            bpp: g.bpp(),
            tile_size: g.tile_size(),
            tiles_x: g.tiles_x(),
            tiles_y: g.tiles_y(),
            palette: e.palette.iter().map(|c| hex(*c)).collect(),
            cooldown_ms: e.cooldown_ms,
            snapshot_url: "/canvas/snapshot",
            ws_url: "/ws",
            webtransport: ctx
                .app
                .wt
                .as_ref()
                .map(|wt| WebTransportInfo { url: wt.url.clone(), cert_hashes: wt.hashes_hex() }),
        },
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

/// The canvas as a binary snapshot
///
/// The document of PROTOCOL.md section 11: the canvas bitmap with, per tile, the sequence it
/// reflects, for a client to subscribe from. Precomputed once per version, gzip-encoded when
/// the request accepts it, with an `ETag` (304 on `If-None-Match`) and `Cache-Control:
/// public, max-age=1`.
#[utoipa::path(get, path = "/canvas/snapshot", tag = "canvas",
    params(
        ("if-none-match" = Option<String>, Header, description = "An `ETag` from an earlier answer"),
        ("accept-encoding" = Option<String>, Header, description = "`gzip` to get it compressed"),
    ),
    responses(
        (status = 200, description = "The snapshot", content_type = "application/octet-stream", body = BinaryBody,
            headers(
                ("etag" = String, description = "The snapshot's version, quoted"),
                ("cache-control" = String, description = "`public, max-age=1`"),
                ("content-encoding" = String, description = "`gzip` when compressed"),
            )),
        (status = 304, description = "Not modified since the `ETag` sent",
            headers(("etag" = String, description = "The snapshot's version, quoted"))),
        AddressErrors,
    ))]
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
    if accepts_gzip(&req) && !s.gzip.is_empty() {
        let mut r = binary(s.gzip.clone(), "application/octet-stream", &etag);
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        return Ok(r);
    }
    Ok(binary(s.raw.clone(), "application/octet-stream", &etag))
}

/// What the timelapse holds
///
/// The canvas journal's range (PROTOCOL.md section 12): its first and last sequences and
/// times, whether it reaches back to the first update, and how it is cut into chunks.
#[utoipa::path(get, path = "/canvas/timelapse", tag = "canvas",
    responses(
        (status = 200, description = "The journal's range", body = crate::timelapse::Info,
            headers(("cache-control" = String, description = "`no-cache`"))),
        AddressErrors, ReadErrors,
    ))]
pub async fn timelapse(ctx: &Ctx) -> Result<Resp, ApiError> {
    let e = &ctx.app.engine.shared().config;
    let (g, palette) = (e.geometry, e.palette.clone());
    let info = ctx.app.db(move |b| {
        let b = b.clone();
        Box::pin(async move { crate::timelapse::info(&b, g, &palette).await })
    });
    let mut r = json(StatusCode::OK, &info.await?);
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// One chunk of the timelapse
///
/// Chunk `n` of the journal as the binary document of PROTOCOL.md section 12, gzip-encoded
/// when the request accepts it. A whole chunk never changes (`immutable`, a year's
/// `max-age`); the last, partial one is `max-age=1`.
#[utoipa::path(get, path = "/canvas/timelapse/{n}", tag = "canvas", operation_id = "timelapse_chunk",
    params(
        ("n" = u64, Path, description = "Chunk number, from 0"),
        ("accept-encoding" = Option<String>, Header, description = "`gzip` to get it compressed"),
    ),
    responses(
        (status = 200, description = "The chunk", content_type = "application/octet-stream", body = BinaryBody,
            headers(
                ("cache-control" = String, description = "`public, max-age=31536000, immutable` for a whole chunk, else `public, max-age=1`"),
                ("content-encoding" = String, description = "`gzip` when compressed"),
            )),
        (status = 304, description = "Not modified since the `ETag` sent"),
        (status = 400, description = "`invalid_argument`: `n` is not a number", body = ErrorBody),
        (status = 404, description = "`not_found`: past the journal's newest update", body = ErrorBody),
        AddressErrors, ReadErrors, BusyErrors,
    ))]
pub async fn timelapse_chunk(req: Request<Incoming>, ctx: &Ctx, n: &str) -> Result<Resp, ApiError> {
    let n: u64 = n.parse().map_err(|_| ApiError::invalid("the chunk number must be a number"))?;
    let chunks = &ctx.app.timelapse;
    let chunk = match chunks.cached(n) {
        Some(c) => c,
        None => {
            // At most CONCURRENT_BUILDS chunks are read and encoded at once, whoever asks.
            let _permit = chunks.permit().await.ok_or_else(ApiError::overloaded)?;
            let last_seq = ctx.app.db(|b| b.last_journal_seq()).await?;
            let base = n.saturating_mul(crate::timelapse::CHUNK_UPDATES);
            if base >= last_seq {
                return Err(ApiError::not_found("no such chunk: past the journal's newest update"));
            }
            let now = pixelparty_engine::now_ms();
            match chunks.cached(n).or_else(|| chunks.tail(n, last_seq, now)) {
                Some(c) => c,
                None => {
                    let limit = crate::timelapse::CHUNK_UPDATES as usize;
                    let records = ctx.app.db(move |b| b.journal_after(base, limit)).await?;
                    let app = ctx.app.clone();
                    tokio::task::spawn_blocking(move || app.timelapse.build(n, &records, last_seq, now))
                        .await
                        .map_err(|_| ApiError::internal("building the chunk failed"))?
                }
            }
        }
    };
    // A whole chunk's bytes are fixed by its number; an unfinished one by its content too.
    let etag = if chunk.whole {
        format!("\"tl{n}\"")
    } else {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        chunk.body.raw.hash(&mut h);
        format!("\"tl{n}-{:x}\"", h.finish())
    };
    if not_modified(&req, &etag) {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    let gzip_ok = accepts_gzip(&req);
    let body = if gzip_ok { chunk.body.gzip.clone() } else { chunk.body.raw.clone() };
    let mut r = binary(body, "application/octet-stream", &etag);
    let h = r.headers_mut();
    if chunk.whole {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip_ok {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(r)
}

fn accepts_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")))
}

/// A WebTransport ticket
///
/// A single-use ticket (valid for a minute) to open a WebTransport session from a page that
/// holds only the HttpOnly session cookie: `new WebTransport(url + "?ticket=" + ticket, ...)`.
#[utoipa::path(post, path = "/wt/ticket", tag = "realtime", security(("cookie" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "A ticket", body = WtTicket),
        (status = 404, description = "`not_found`: WebTransport is not enabled", body = ErrorBody),
        SessionErrors, WriteErrors,
    ))]
pub async fn wt_ticket(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let me = ctx.auth(&req).await?;
    let wt = ctx.app.wt.as_ref().ok_or_else(|| ApiError::not_found("WebTransport is not enabled"))?;
    let ticket = wt.issue_ticket(me.id, me.token_hash).map_err(|_| ApiError::overloaded())?;
    Ok(json(StatusCode::OK, &WtTicket { ticket, url: wt.url.clone(), cert_hashes: wt.hashes_hex() }))
}

/// The canvas as a PNG image
///
/// Indexed colour at the canvas's bits per pixel; encoded once per snapshot version, with
/// an `ETag` (304 on `If-None-Match`).
#[utoipa::path(get, path = "/canvas.png", tag = "canvas", operation_id = "canvas_png",
    params(("if-none-match" = Option<String>, Header, description = "An `ETag` from an earlier answer")),
    responses(
        (status = 200, description = "The image", content_type = "image/png", body = BinaryBody,
            headers(
                ("etag" = String, description = "`\"png-<version>\"`"),
                ("cache-control" = String, description = "`public, max-age=1`"),
            )),
        (status = 304, description = "Not modified since the `ETag` sent"),
        AddressErrors, ReadErrors,
    ))]
pub async fn png(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let palette = &ctx.app.engine.shared().config.palette;
    let (version, bytes) = ctx.app.snapshots.png(palette).await.map_err(|e| ApiError::internal(format!("png: {e}")))?;
    let etag = format!("\"png-{version}\"");
    if not_modified(&req, &etag) {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    Ok(binary(bytes, "image/png", &etag))
}

/// Pixel inspector
///
/// The current colour of a pixel, who placed it and when, and its recent history.
#[utoipa::path(get, path = "/canvas/pixel", tag = "canvas", operation_id = "inspect_pixel",
    params(
        ("x" = u32, Query, description = "Column, below the canvas width"),
        ("y" = u32, Query, description = "Row, below the canvas height"),
    ),
    responses(
        (status = 200, description = "The pixel", body = PixelInfo),
        (status = 400, description = "`invalid_argument`: x or y missing, not a number, or off the canvas", body = ErrorBody),
        AddressErrors, ReadErrors,
    ))]
pub async fn pixel(req: Request<Incoming>, ctx: &Ctx) -> Result<Resp, ApiError> {
    let q = query(&req);
    let (x, y): (u32, u32) = (query_num(&q, "x", u32::MAX)?, query_num(&q, "y", u32::MAX)?);
    let g = ctx.app.engine.shared().config.geometry;
    let loc = g.locate(x, y).ok_or_else(|| ApiError::invalid("x and y must be on the canvas"))?;
    let snap = ctx.app.snapshots.latest();
    let colour = pixelparty_protocol::canvas::get_pixel(&snap.snapshot.tiles[loc.tile as usize], g.bpp(), loc.offset);
    let history = ctx.app.db(move |b| b.pixel_history(x as u16, y as u16, u64::MAX, 10)).await?;
    let names = ctx.app.names(history.iter().filter_map(|r| r.painter().or(r.rolled_back()))).await?;
    let mut entries = Vec::with_capacity(history.len());
    let name_of = |id: u32| -> Result<String, ApiError> { Ok(names.get(&id).cloned().unwrap_or_default()) };
    for r in &history {
        // A rollback's restore has no painter: it says whose update it undid.
        let entry = match (r.painter(), r.rolled_back()) {
            (Some(id), _) => PixelUpdate {
                seq: r.seq,
                colour: r.colour,
                user_id: Some(id),
                username: Some(name_of(id)?),
                time_ms: r.time_ms,
                restored_by_rollback_of: None,
            },
            (None, rolled) => PixelUpdate {
                seq: r.seq,
                colour: r.colour,
                user_id: None,
                username: None,
                time_ms: r.time_ms,
                restored_by_rollback_of: rolled.map(|id| UserRef { id, username: name_of(id).unwrap_or_default() }),
            },
        };
        entries.push(entry);
    }
    let latest = entries.first();
    let user = latest.and_then(|e| Some(UserRef { id: e.user_id?, username: e.username.clone().unwrap_or_default() }));
    let info = PixelInfo {
        x,
        y,
        colour: latest.map_or(colour, |e| e.colour),
        seq: latest.map(|e| e.seq),
        user,
        restored_by_rollback_of: latest.and_then(|e| e.restored_by_rollback_of.clone()),
        time_ms: latest.map(|e| e.time_ms),
        history: Vec::new(),
    };
    Ok(json(StatusCode::OK, &PixelInfo { history: entries, ..info }))
}
