//! The admin endpoint's OpenAPI 3.1 document, served at `GET /openapi.json` on the admin
//! listener without the admin token (like `/healthz`: it holds no secret and describes only
//! what README.md says; every operation it describes still needs the token).
//!
//! The admin routes are matched inline in [`crate::admin`]; their operations are described
//! here on documentation-only functions, with the request bodies the public API's moderation
//! routes share and response types that spell out the JSON the admin handlers build.
//! `gateway/tests/schemathesis/run.sh` checks the running endpoint against this document (and
//! its strict response schemas, which allow no property they do not list), and a test checks
//! that every operation answers something other than 404 on a running server.

use std::sync::LazyLock;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::openapi as oa;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::Resp;
use crate::http::auth::RoleName;
use crate::http::moderation::{BanIpRequest, BanUserRequest, Bans, CidrBody, RollbackRequest};
use crate::http::openapi::{BodyErrors, BusyErrors, ErrorBody, INTERNAL, error_doc, serve_json};
use crate::http::social::UsernameBody;
use crate::rollback::RollbackReport;

/// The admin endpoint's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pixelparty admin",
        description = "The admin endpoint of pixelparty: its own listener (default 127.0.0.1:9091; keep it private). \
Every route except `/healthz`, `/readyz` and this document needs `Authorization: Bearer <admin token>` (from `server.admin_token`, \
`PIXELPARTY_ADMIN_TOKEN`, or generated into `<data>/admin.token`). Actions taken here are recorded with actor 0 in the audit log. \
An unknown path, or a known one with another method, gets 404 `not_found` (after the token check).",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        healthz, readyz, openapi_json, metrics, stats, snapshot, bans, ban_user, unban_user, ban_ip, unban_ip, kick,
        rollback, set_role, audit, backup, backups, rewind,
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminToken),
    tags(
        (name = "health", description = "Liveness and readiness, without the token"),
        (name = "observe", description = "Metrics, statistics, audit log"),
        (name = "moderation", description = "Bans, kicks, rollback, roles"),
        (name = "canvas", description = "Snapshots, rewinding the canvas"),
        (name = "backup", description = "Backups to a directory or S3"),
    )
)]
#[derive(Debug)]
pub struct AdminApi;

/// Adds the admin token's security scheme.
#[derive(Debug)]
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, api: &mut oa::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`Authorization: Bearer <admin token>`"))
                    .build(),
            ),
        );
    }
}

/// The answer of `POST /snapshot`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotWritten {
    /// Tile snapshots written (tiles changed since the last ones).
    pub tiles_written: u64,
    /// The snapshot version now served.
    pub version: u64,
}

/// One shard's live statistics.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardStats {
    /// Shard index.
    pub shard: u32,
    /// Live sessions on it.
    pub sessions: u64,
    /// Rooms whose home it is.
    pub rooms: u64,
    /// Bytes queued to its clients.
    pub queued_bytes: u64,
    /// Outbound batches waiting.
    pub pending_outbound: u64,
    /// Paints waiting to be applied.
    pub pending_paints: u64,
    /// Fan-out ticks not finished.
    pub ticks_in_flight: u64,
}

/// The answer of `GET /stats`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    /// Open client connections.
    pub connections: u64,
    /// Live sessions, all shards.
    pub sessions: u64,
    /// Accounts.
    pub users: u64,
    /// The snapshot version served.
    pub snapshot_version: u64,
    /// The latest canvas update's sequence.
    pub last_seq: u64,
    /// Whether the store refuses writes after a failure.
    pub store_poisoned: bool,
    /// Per shard.
    pub shards: Vec<ShardStats>,
}

/// The answer of a ban.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannedAnswer {
    /// The user name or address range, as sent.
    pub banned: String,
}

/// The answer of an unban.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnbannedAnswer {
    /// The user name or address range, as sent.
    pub unbanned: String,
}

/// The body of `POST /kick`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct KickRequest {
    /// Whose sessions to end.
    pub username: String,
    /// The close reason's text (default `kicked by an administrator`).
    #[serde(default)]
    pub message: String,
}

/// The answer of `POST /kick`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Kicked {
    /// The user name, as sent.
    pub kicked: String,
}

/// The body of `POST /users/role`, and its answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SetRole {
    /// The user's name.
    pub username: String,
    /// The new role.
    pub role: RoleName,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Sequence (newest highest).
    pub seq: u64,
    /// When, ms since the Unix epoch.
    pub time_ms: u64,
    /// Who: a user id, or 0 for the admin endpoint.
    pub actor: u32,
    /// The actor's name (`admin endpoint` for 0).
    pub actor_name: String,
    /// What, e.g. `ban_user`, `unban_net`, `kick`, `rollback`, `set_role`.
    pub action: String,
    /// On whom or what (a user id, an address range, `canvas`).
    pub target: String,
    /// The target user's name, when the target is a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Detail.
    pub detail: String,
}

/// The answer of `GET /backups`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupList {
    /// Where the backups are.
    pub location: String,
    /// Complete backups, oldest first.
    pub backups: Vec<crate::backup::Manifest>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
}

/// The 401 of every route behind the token.
#[derive(Debug)]
pub struct TokenErrors;

impl utoipa::IntoResponses for TokenErrors {
    fn responses() -> std::collections::BTreeMap<String, oa::RefOr<oa::Response>> {
        std::collections::BTreeMap::from([
            ("401".to_owned(), error_doc("401", "`unauthorized`: no or a wrong admin token")),
            ("500".to_owned(), error_doc("500", INTERNAL)),
        ])
    }
}

/// The module holding the documentation-only functions, one per operation.
#[expect(dead_code, reason = "documentation only: the handlers are the match arms of crate::admin")]
mod ops {
    use super::*;

    /// Liveness
    #[utoipa::path(get, path = "/healthz", tag = "health",
        responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
    pub fn healthz() {}

    /// Readiness
    ///
    /// Not ready while the store refuses writes (poisoned) or the server shuts down.
    #[utoipa::path(get, path = "/readyz", tag = "health",
        responses(
            (status = 200, description = "`ready`", content_type = "text/plain", body = String),
            (status = 503, description = "`not ready`", content_type = "text/plain", body = String),
        ))]
    pub fn readyz() {}

    /// This document
    #[utoipa::path(get, path = "/openapi.json", tag = "health", operation_id = "openapi",
        responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
    pub fn openapi_json() {}

    /// Prometheus metrics
    #[utoipa::path(get, path = "/metrics", tag = "observe", security(("admin_token" = [])),
        responses(
            (status = 200, description = "The Prometheus text exposition format", content_type = "text/plain", body = String),
            TokenErrors,
        ))]
    pub fn metrics() {}

    /// Live statistics per shard
    #[utoipa::path(get, path = "/stats", tag = "observe", security(("admin_token" = [])),
        responses(
            (status = 200, description = "Statistics", body = Stats),
            TokenErrors,
        ))]
    pub fn stats() {}

    /// Write tile snapshots now
    #[utoipa::path(post, path = "/snapshot", tag = "canvas", security(("admin_token" = [])),
        responses(
            (status = 200, description = "Written", body = SnapshotWritten),
            TokenErrors, BusyErrors,
        ))]
    pub fn snapshot() {}

    /// User and address bans
    #[utoipa::path(get, path = "/bans", tag = "moderation", security(("admin_token" = [])),
        responses((status = 200, description = "The bans in force", body = Bans), TokenErrors))]
    pub fn bans() {}

    /// Ban a user
    ///
    /// Ends their live sessions at once.
    #[utoipa::path(post, path = "/bans/user", tag = "moderation", security(("admin_token" = [])),
        request_body = BanUserRequest,
        responses(
            (status = 200, description = "Banned", body = BannedAnswer),
            (status = 404, description = "`not_found`: no such user", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn ban_user() {}

    /// Lift a user ban
    #[utoipa::path(post, path = "/unbans/user", tag = "moderation", security(("admin_token" = [])),
        request_body = UsernameBody,
        responses(
            (status = 200, description = "Not banned (any more)", body = UnbannedAnswer),
            (status = 404, description = "`not_found`: no such user", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn unban_user() {}

    /// Ban an address or a CIDR range
    ///
    /// Live sessions from the range end at once; new connections get a fixed 403. Unlike the
    /// public route, this one does not refuse a range that holds the caller's address.
    #[utoipa::path(post, path = "/bans/ip", tag = "moderation", security(("admin_token" = [])),
        request_body = BanIpRequest,
        responses(
            (status = 200, description = "Banned", body = BannedAnswer),
            (status = 409, description = "`conflict`: too many address bans", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn ban_ip() {}

    /// Lift an address ban
    #[utoipa::path(post, path = "/unbans/ip", tag = "moderation", security(("admin_token" = [])),
        request_body = CidrBody,
        responses(
            (status = 200, description = "Not banned (any more)", body = UnbannedAnswer),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn unban_ip() {}

    /// End a user's sessions
    #[utoipa::path(post, path = "/kick", tag = "moderation", security(("admin_token" = [])),
        request_body = KickRequest,
        responses(
            (status = 200, description = "Kicked", body = Kicked),
            (status = 404, description = "`not_found`: no such user", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn kick() {}

    /// Roll back a user's pixels in a time range
    ///
    /// Same as the public `POST /canvas/rollback`.
    #[utoipa::path(post, path = "/rollback", tag = "moderation", security(("admin_token" = [])),
        request_body = RollbackRequest,
        responses(
            (status = 200, description = "What the rollback did", body = RollbackReport),
            (status = 404, description = "`not_found`: no such user", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn rollback() {}

    /// Promote or demote a user
    ///
    /// Ends the user's live sessions, which carry the role they connected with.
    #[utoipa::path(post, path = "/users/role", tag = "moderation", security(("admin_token" = [])),
        request_body = SetRole,
        responses(
            (status = 200, description = "Set", body = SetRole),
            (status = 404, description = "`not_found`: no such user", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn set_role() {}

    /// Moderation audit log
    #[utoipa::path(get, path = "/audit", tag = "observe", security(("admin_token" = [])),
        params(
            ("before" = Option<u64>, Query, description = "Entries with a sequence below this (default: the newest)"),
            ("limit" = Option<usize>, Query, description = "Most entries (default 100, clamped to 1..=1000)"),
        ),
        responses(
            (status = 200, description = "Newest first", body = AuditPage),
            (status = 400, description = "`invalid_argument`: a query parameter is not a number of its range", body = ErrorBody),
            TokenErrors,
        ))]
    pub fn audit() {}

    /// Take a backup now
    ///
    /// A consistent copy of the whole store (fjall; in PostgreSQL mode the canvas only) to
    /// `backup.target`, then retention (`backup.retain`). Answers when it is complete.
    #[utoipa::path(post, path = "/backup", tag = "backup", security(("admin_token" = [])),
        responses(
            (status = 200, description = "The backup's manifest", body = crate::backup::Manifest),
            (status = 409, description = "`conflict`: a backup is already running", body = ErrorBody),
            (status = 503, description = "`backup_failed`: the export or the upload failed (the reason in `message`)", body = ErrorBody),
            TokenErrors,
        ))]
    pub fn backup() {}

    /// List the complete backups at `backup.target`
    #[utoipa::path(get, path = "/backups", tag = "backup", security(("admin_token" = [])),
        responses(
            (status = 200, description = "Oldest first", body = BackupList),
            (status = 503, description = "`backup_failed`: the location could not be listed", body = ErrorBody),
            TokenErrors,
        ))]
    pub fn backups() {}

    /// Rewind the canvas (or a rectangle of it) to an earlier moment
    ///
    /// Every pixel that differs from the canvas at `at_ms` (rebuilt from the journal, which
    /// must reach back to the first update) gets its colour of then back, as a compare-and-set
    /// restore like a rollback's: a pixel painted after the rewind began is left alone.
    #[utoipa::path(post, path = "/canvas/rewind", tag = "canvas", security(("admin_token" = [])),
        request_body = crate::admin::RewindRequest,
        responses(
            (status = 200, description = "What the rewind did", body = RollbackReport),
            (status = 409, description = "`conflict`: a rewind is already running", body = ErrorBody),
            BodyErrors, TokenErrors, BusyErrors,
        ))]
    pub fn rewind() {}
}
use ops::*;

/// The document as JSON.
pub fn json() -> String {
    crate::http::openapi::render(&AdminApi::openapi())
}

/// `GET /openapi.json` on the admin listener: the document, rendered once.
pub fn document() -> Resp {
    static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(json()));
    serve_json(DOCUMENT.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_document_is_openapi_3_and_lists_the_admin_routes() {
        let doc: serde_json::Value = serde_json::from_str(&json()).expect("the document is JSON");
        let mut ops = crate::http::openapi::check_document(&doc);
        ops.sort();
        let expected = [
            ("get", "/audit"),
            ("get", "/backups"),
            ("get", "/bans"),
            ("get", "/healthz"),
            ("get", "/metrics"),
            ("get", "/openapi.json"),
            ("get", "/readyz"),
            ("get", "/stats"),
            ("post", "/backup"),
            ("post", "/bans/ip"),
            ("post", "/bans/user"),
            ("post", "/canvas/rewind"),
            ("post", "/kick"),
            ("post", "/rollback"),
            ("post", "/snapshot"),
            ("post", "/unbans/ip"),
            ("post", "/unbans/user"),
            ("post", "/users/role"),
        ];
        let expected: Vec<(String, String)> =
            expected.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
        assert_eq!(ops, expected);
        assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    }
}
