//! The `pixelparty` binary: `serve` (the default) runs the server; `admin ...` calls a running
//! server's admin endpoint; `user ...` and `export-png` work offline on a data directory.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use pixelparty_gateway::config::Config;
use pixelparty_gateway::server::Server;

/// pixelparty: a collaborative pixel canvas and chat server.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Call a running server's admin endpoint.
    Admin(AdminArgs),
    /// Manage users in a data directory while the server is stopped.
    #[command(subcommand)]
    User(UserCommand),
    /// Write the canvas of a data directory (server stopped) as a PNG file.
    ExportPng {
        /// Output file.
        out: PathBuf,
        /// The canvas as it was at this moment (ms since the Unix epoch), rebuilt from the
        /// journal, instead of now (needs the journal back to the first update).
        #[arg(long)]
        at: Option<u64>,
        #[command(flatten)]
        common: DataArgs,
    },
    /// Write what the canvas went through as a file.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Rebuild a data directory from a backup (a directory or `s3://bucket/prefix`), verify it
    /// row for row, and optionally bring its canvas back to an earlier moment.
    Restore(RestoreArgs),
    /// Copy every record of a stopped server's store into an empty one (fjall to PostgreSQL or
    /// back), then compare the two. Login sessions are not copied: users log in again.
    Migrate {
        /// Source: `fjall:<PATH>` (the store directory, `<data>/db`; a data directory holding
        /// `db` also works) or a `postgres://` URL.
        #[arg(long)]
        from: String,
        /// Target, which must be empty, in the same forms (a new `fjall:<PATH>` is created).
        #[arg(long)]
        to: String,
    },
}

/// `pixelparty export ...`.
#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// The canvas's history as an animation (APNG for `.apng`/`.png`, GIF for `.gif`), played
    /// from the journal: frames at equal steps of time from `--from` to `--to`. Reads a running
    /// server's `GET /canvas/timelapse` with `--url`, else the store of a stopped server (or its
    /// PostgreSQL).
    Timelapse(TimelapseArgs),
}

/// `pixelparty export timelapse`.
#[derive(Args, Debug)]
struct TimelapseArgs {
    /// Output file: `.apng`, `.png` or `.gif`.
    out: PathBuf,
    /// The first frame's moment (ms since the Unix epoch or YYYY-MM-DDTHH:MM:SSZ; default: the
    /// journal's first update).
    #[arg(long)]
    from: Option<String>,
    /// The last frame's moment (default: the journal's newest update).
    #[arg(long)]
    to: Option<String>,
    /// Frames per second of the animation.
    #[arg(long, default_value_t = 20)]
    fps: u32,
    /// Length of the animation in seconds (frames = fps × seconds).
    #[arg(long, default_value_t = 30)]
    seconds: u32,
    /// Each canvas pixel as N×N pixels.
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// A running server's public address (e.g. `http://127.0.0.1:8080`) to read the timelapse
    /// from, instead of a stopped server's store.
    #[arg(long)]
    url: Option<String>,
    #[command(flatten)]
    common: DataArgs,
}

/// `pixelparty restore`.
#[derive(Args, Debug)]
struct RestoreArgs {
    /// The backups' location: a directory or `s3://bucket/prefix` (S3 credentials from
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`).
    #[arg(long)]
    from: String,
    /// The backup's id (default: the newest complete one).
    #[arg(long)]
    backup: Option<String>,
    /// Only list the complete backups at `--from`.
    #[arg(long)]
    list: bool,
    /// Then bring the restored canvas back to this moment (ms since the Unix epoch, or UTC
    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`), from the backup's journal or, when the journal does not
    /// reach back, from an older backup's canvas plus the journal; the changes are journaled
    /// as restores. Without a running server; to rewind a live canvas use `admin rewind`.
    #[arg(long)]
    canvas_at: Option<String>,
    /// S3-compatible endpoint (default: `backup.s3_endpoint` of the config, else AWS).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// S3 region (default: `backup.s3_region`, else `AWS_REGION`).
    #[arg(long)]
    s3_region: Option<String>,
    /// Allow plain HTTP to the S3 endpoint (a local test server).
    #[arg(long)]
    s3_allow_http: bool,
    #[command(flatten)]
    common: DataArgs,
}

/// Where an offline command finds the data: the configuration file and the data directory
/// (the only server options that matter with the server stopped).
#[derive(Args, Debug, Clone, Default)]
struct DataArgs {
    /// TOML configuration file (its data directory, palette and password cost are used).
    #[arg(long, env = "PIXELPARTY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of a stopped server.
    #[arg(long, env = "PIXELPARTY_DATA")]
    data: Option<PathBuf>,
    /// The server's PostgreSQL, when it keeps its data there.
    #[arg(long, env = "PIXELPARTY_POSTGRES_URL")]
    postgres_url: Option<String>,
}

impl DataArgs {
    fn load(&self) -> Result<Config> {
        load_config(&ServeArgs {
            config: self.config.clone(),
            data: self.data.clone(),
            postgres_url: self.postgres_url.clone(),
            ..ServeArgs::default()
        })
    }
}

/// Options of the server; each also reads an environment variable, and overrides the config
/// file.
#[derive(Args, Debug, Clone, Default)]
struct ServeArgs {
    /// TOML configuration file (see README for every key).
    #[arg(long, env = "PIXELPARTY_CONFIG")]
    config: Option<PathBuf>,
    /// Public HTTP/WebSocket address.
    #[arg(long, env = "PIXELPARTY_HTTP")]
    http: Option<std::net::SocketAddr>,
    /// Admin endpoint address (keep it private).
    #[arg(long, env = "PIXELPARTY_ADMIN")]
    admin_addr: Option<std::net::SocketAddr>,
    /// WebTransport (UDP) address.
    #[arg(long, env = "PIXELPARTY_WT")]
    wt: Option<std::net::SocketAddr>,
    /// Data directory (store, admin token).
    #[arg(long, env = "PIXELPARTY_DATA")]
    data: Option<PathBuf>,
    /// Shard threads (default: one per core).
    #[arg(long, env = "PIXELPARTY_SHARDS")]
    shards: Option<usize>,
    /// Durability: sync (ack after fsync), interval:<ms>, or none.
    #[arg(long, env = "PIXELPARTY_DURABILITY")]
    durability: Option<String>,
    /// Keep the data in PostgreSQL at this URL (sets storage.backend = "postgres").
    #[arg(long, env = "PIXELPARTY_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Cluster mode: Redis URL shared by the nodes (needs --postgres-url).
    #[arg(long, env = "PIXELPARTY_REDIS_URL")]
    redis_url: Option<String>,
    /// Cluster mode: this node's name.
    #[arg(long, env = "PIXELPARTY_NODE_ID")]
    node_id: Option<String>,
    /// Cluster mode: prefix of the Redis keys.
    #[arg(long, env = "PIXELPARTY_CLUSTER_PREFIX")]
    cluster_prefix: Option<String>,
    /// Paint cooldown in milliseconds (0: none).
    #[arg(long, env = "PIXELPARTY_COOLDOWN_MS")]
    cooldown_ms: Option<u32>,
    /// Canvas width (only when the data directory is new).
    #[arg(long, env = "PIXELPARTY_WIDTH")]
    width: Option<u32>,
    /// Canvas height (only when the data directory is new).
    #[arg(long, env = "PIXELPARTY_HEIGHT")]
    height: Option<u32>,
    /// Log format: text or json.
    #[arg(long, env = "PIXELPARTY_LOG_FORMAT")]
    log_format: Option<String>,
}

/// How `admin` reaches the server; the options may come before or after the action
/// (`pixelparty admin --url .. ban alice` or `pixelparty admin ban alice --url ..`).
#[derive(Args, Debug)]
struct AdminArgs {
    /// Admin endpoint URL.
    #[arg(long, env = "PIXELPARTY_ADMIN_URL", default_value = "http://127.0.0.1:9091", global = true)]
    url: String,
    /// Admin token (default: read from <data>/admin.token).
    #[arg(long, env = "PIXELPARTY_ADMIN_TOKEN", global = true)]
    token: Option<String>,
    /// Data directory holding admin.token.
    #[arg(long, env = "PIXELPARTY_DATA", default_value = "./data", global = true)]
    data: PathBuf,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Subcommand, Debug)]
enum AdminAction {
    /// Ban a user (ends their sessions).
    Ban {
        /// User name.
        username: String,
        /// Reason shown to the user.
        #[arg(long, default_value = "banned by an administrator")]
        reason: String,
        /// Ban length in seconds (default: permanent).
        #[arg(long)]
        duration_s: Option<u64>,
    },
    /// Lift a user ban.
    Unban {
        /// User name.
        username: String,
    },
    /// Ban an address or CIDR range.
    BanIp {
        /// `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`.
        cidr: String,
        /// Reason.
        #[arg(long, default_value = "")]
        reason: String,
        /// Ban length in seconds (default: permanent).
        #[arg(long)]
        duration_s: Option<u64>,
    },
    /// Lift an address ban.
    UnbanIp {
        /// The banned range.
        cidr: String,
    },
    /// End a user's sessions.
    Kick {
        /// User name.
        username: String,
        /// Message shown to the user.
        #[arg(long, default_value = "")]
        message: String,
    },
    /// Restore the pixels a user painted in a time range.
    Rollback {
        /// User name.
        username: String,
        /// Start, ms since the Unix epoch.
        #[arg(long)]
        from_ms: u64,
        /// End (exclusive), ms since the Unix epoch.
        #[arg(long)]
        to_ms: u64,
    },
    /// Make a user an administrator.
    Promote {
        /// User name.
        username: String,
    },
    /// Make an administrator an ordinary user.
    Demote {
        /// User name.
        username: String,
    },
    /// Write tile snapshots now.
    Snapshot,
    /// Live statistics.
    Stats,
    /// List bans.
    Bans,
    /// The moderation audit log.
    Audit,
    /// Take a backup now (to `backup.target`); prints its manifest.
    Backup,
    /// List the complete backups at `backup.target`.
    Backups,
    /// Bring the live canvas (or a rectangle of it) back to an earlier moment.
    Rewind {
        /// The moment: ms since the Unix epoch, or UTC `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
        #[arg(long)]
        at: String,
        /// Only this rectangle: `x,y,width,height`.
        #[arg(long)]
        rect: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user (password from PIXELPARTY_PASSWORD or stdin).
    Create {
        /// User name.
        username: String,
        /// Make it an administrator.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        common: DataArgs,
    },
    /// Make an existing user an administrator.
    Promote {
        /// User name.
        username: String,
        #[command(flatten)]
        common: DataArgs,
    },
}

fn load_config(args: &ServeArgs) -> Result<Config> {
    let mut c = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| anyhow!(e))?,
        None => Config::default(),
    };
    if let Some(v) = args.http {
        c.server.http = v;
    }
    if let Some(v) = args.admin_addr {
        c.server.admin = v;
    }
    if let Some(v) = args.wt {
        c.webtransport.bind = v;
    }
    if let Some(v) = &args.data {
        c.server.data_dir = v.clone();
    }
    if let Some(v) = args.shards {
        c.server.shards = v;
    }
    if let Some(v) = &args.durability {
        c.storage.durability = v.clone();
    }
    if let Some(v) = &args.postgres_url {
        c.storage.backend = "postgres".into();
        c.storage.postgres_url = v.clone();
    }
    if let Some(v) = &args.redis_url {
        c.cluster.redis_url = v.clone();
    }
    if let Some(v) = &args.node_id {
        c.cluster.node_id = v.clone();
    }
    if let Some(v) = &args.cluster_prefix {
        c.cluster.key_prefix = v.clone();
    }
    if let Some(v) = args.cooldown_ms {
        c.canvas.cooldown_ms = v;
    }
    if let Some(v) = args.width {
        c.canvas.width = v;
    }
    if let Some(v) = args.height {
        c.canvas.height = v;
    }
    if let Some(v) = &args.log_format {
        c.server.log_format = v.clone();
    }
    c.validate().map_err(|e| anyhow!(e))?;
    Ok(c)
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,lsm_tree=warn,fjall=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(args: &ServeArgs) -> Result<()> {
    let config = load_config(args)?;
    init_logging(&config.server.log_format);
    let store = match pixelparty_storage::Store::open(config.store().map_err(|e| anyhow!(e))?) {
        Ok(store) => store,
        Err(e) if e.is_unavailable() => {
            // Say what and where, and exit for a supervisor to retry later.
            eprintln!(
                "error: the database is unreachable ({e}); check storage.postgres_url and that PostgreSQL runs (exit {EXIT_STORE_UNREACHABLE})"
            );
            std::process::exit(EXIT_STORE_UNREACHABLE);
        }
        Err(e) => return Err(anyhow!("opening the store: {e}")),
    };
    let server = match Server::start_with(config.clone(), store) {
        Ok(server) => server,
        Err(e @ pixelparty_gateway::server::StartError::Cluster(_)) => {
            eprintln!("error: {e}; check cluster.redis_url and that Redis runs (exit {EXIT_STORE_UNREACHABLE})");
            std::process::exit(EXIT_STORE_UNREACHABLE);
        }
        Err(e) => return Err(anyhow!(e)),
    };
    println!("pixelparty is running (storage: {})", server.app.store.backend_name());
    println!(
        "  web client, REST API and WebSocket: http://{}/  (API: http://{}/openapi.json)",
        server.http_addr, server.http_addr
    );
    println!("  admin endpoint: http://{}/  (token: {})", server.admin_addr, token_hint(&config));
    let has_admin = server
        .app
        .store
        .wait(|b| b.users(0, 100_000))
        .map(|u| u.iter().any(|u| u.role == pixelparty_storage::Role::Admin))
        .unwrap_or(true);
    if !has_admin {
        println!(
            "  no ADMIN yet: sign up, then run `pixelparty admin promote <name>` (or, server stopped, `pixelparty user promote <name>`)"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store_failed = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => false,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => false,
            () = server.store_failed() => true,
        }
    });
    if store_failed {
        // The store refuses writes after a failed write or fsync (a full disk, say) and does
        // not recover in place: stop, so that the supervisor restarts the process, which
        // replays the journal (ops/pixelparty.service: Restart=on-failure).
        tracing::error!("storage failed; shutting down for a restart (exit {EXIT_STORE_FAILED})");
        server.shutdown();
        std::process::exit(EXIT_STORE_FAILED);
    }
    tracing::info!("shutting down");
    server.shutdown();
    Ok(())
}

/// Exit status after a storage failure (`EX_TEMPFAIL`): restart me once the cause is fixed.
const EXIT_STORE_FAILED: i32 = 75;

/// Exit status when the database cannot be reached at start (`EX_UNAVAILABLE`).
const EXIT_STORE_UNREACHABLE: i32 = 69;

fn token_hint(config: &Config) -> String {
    if config.server.admin_token.is_some() {
        "from the config file".into()
    } else if std::env::var_os("PIXELPARTY_ADMIN_TOKEN").is_some() {
        "from PIXELPARTY_ADMIN_TOKEN".into()
    } else {
        format!("in {}", config.server.data_dir.join("admin.token").display())
    }
}

fn admin(args: AdminArgs) -> Result<()> {
    let token = match args.token {
        Some(t) => t,
        None => std::fs::read_to_string(args.data.join("admin.token"))
            .context("reading the admin token (pass --token)")?
            .trim()
            .to_owned(),
    };
    use serde_json::json;
    let (method, path, body) = match args.action {
        AdminAction::Ban { username, reason, duration_s } => {
            ("POST", "/bans/user", json!({ "username": username, "reason": reason, "duration_s": duration_s }))
        }
        AdminAction::Unban { username } => ("POST", "/unbans/user", json!({ "username": username })),
        AdminAction::BanIp { cidr, reason, duration_s } => {
            ("POST", "/bans/ip", json!({ "cidr": cidr, "reason": reason, "duration_s": duration_s }))
        }
        AdminAction::UnbanIp { cidr } => ("POST", "/unbans/ip", json!({ "cidr": cidr })),
        AdminAction::Kick { username, message } => {
            ("POST", "/kick", json!({ "username": username, "message": message }))
        }
        AdminAction::Rollback { username, from_ms, to_ms } => {
            ("POST", "/rollback", json!({ "username": username, "from_ms": from_ms, "to_ms": to_ms }))
        }
        AdminAction::Promote { username } => ("POST", "/users/role", json!({ "username": username, "role": "admin" })),
        AdminAction::Demote { username } => ("POST", "/users/role", json!({ "username": username, "role": "user" })),
        AdminAction::Snapshot => ("POST", "/snapshot", json!({})),
        AdminAction::Stats => ("GET", "/stats", json!(null)),
        AdminAction::Bans => ("GET", "/bans", json!(null)),
        AdminAction::Audit => ("GET", "/audit", json!(null)),
        AdminAction::Backup => ("POST", "/backup", json!(null)),
        AdminAction::Backups => ("GET", "/backups", json!(null)),
        AdminAction::Rewind { at, rect } => {
            let at_ms = pixelparty_gateway::backup::parse_time(&at)?;
            let rect = match rect {
                None => serde_json::Value::Null,
                Some(r) => {
                    let v: Vec<u32> = r
                        .split(',')
                        .map(|n| n.trim().parse())
                        .collect::<Result<_, _>>()
                        .map_err(|_| anyhow!("--rect is x,y,width,height"))?;
                    let [x, y, width, height] = v[..] else { bail!("--rect is x,y,width,height") };
                    json!({ "x": x, "y": y, "width": width, "height": height })
                }
            };
            ("POST", "/canvas/rewind", json!({ "at_ms": at_ms, "rect": rect }))
        }
    };
    let (status, text) = admin_request(&args.url, &token, method, path, &body)?;
    println!("{text}");
    if !(200..300).contains(&status) {
        bail!("admin endpoint answered {status}");
    }
    Ok(())
}

fn admin_request(url: &str, token: &str, method: &str, path: &str, body: &serde_json::Value) -> Result<(u16, String)> {
    use http_body_util::{BodyExt, Full};
    let authority = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let stream =
            tokio::net::TcpStream::connect(&authority).await.with_context(|| format!("connecting to {authority}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let payload = if body.is_null() { Vec::new() } else { serde_json::to_vec(body)? };
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &authority)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(payload)))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    })
}

fn open_store(config: &Config) -> Result<pixelparty_storage::Store> {
    pixelparty_storage::Store::open(config.store().map_err(|e| anyhow!(e))?)
        .context("opening the data directory (is the server running?)")
}

fn user(cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Create { username, admin, common } => {
            let config = common.load()?;
            if !pixelparty_gateway::http::auth::valid_username(&username) {
                bail!("username must be 3-32 characters of A-Z, a-z, 0-9, _ . -");
            }
            let password = match std::env::var("PIXELPARTY_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut p = String::new();
                    std::io::stdin().read_to_string(&mut p)?;
                    p.trim_end_matches(['\n', '\r']).to_owned()
                }
            };
            if !(8..=256).contains(&password.len()) {
                bail!("password must be 8-256 bytes");
            }
            let a = &config.auth;
            let params =
                argon2::Params::new(a.argon2_m_kib, a.argon2_t, 1, None).map_err(|e| anyhow!(e.to_string()))?;
            let hash = {
                use argon2::password_hash::PasswordHasher;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password(password.as_bytes())
                    .map_err(|e| anyhow!(e.to_string()))?
                    .to_string()
            };
            let store = open_store(&config)?;
            let role = if admin { pixelparty_storage::Role::Admin } else { pixelparty_storage::Role::User };
            let now = pixelparty_engine::now_ms();
            let user = store.wait(move |b| b.create_user(username, hash, role, now)).context("creating the user")?;
            println!("created user {} (id {}, {:?})", user.name, user.id, user.role);
        }
        UserCommand::Promote { username, common } => {
            let config = common.load()?;
            let store = open_store(&config)?;
            let name = username.clone();
            let user = store.wait(move |b| b.user_by_name(name))?.ok_or_else(|| anyhow!("no user {username}"))?;
            let now = pixelparty_engine::now_ms();
            store.wait(move |b| b.set_role(user.id, pixelparty_storage::Role::Admin, 0, now))?;
            println!("{username} is now an ADMIN");
        }
    }
    Ok(())
}

fn export_png(out: PathBuf, at: Option<u64>, args: &DataArgs) -> Result<()> {
    let config = args.load()?;
    let engine = config.engine().map_err(|e| anyhow!(e))?;
    let store = open_store(&config)?;
    let geometry = engine.geometry;
    let recovered = match at {
        None => store.wait(move |b| b.recover_canvas(geometry))?,
        Some(at_ms) => store.wait(move |b| {
            let b = b.clone();
            Box::pin(async move { pixelparty_storage::canvas::canvas_at(&*b, geometry, at_ms).await })
        })?,
    };
    let snap = pixelparty_engine::CanvasSnapshot {
        version: 0,
        taken_ms: pixelparty_engine::now_ms(),
        geometry: engine.geometry,
        tiles: recovered.tiles.into_iter().map(bytes::Bytes::from).collect(),
        seqs: recovered.tile_seqs,
    };
    let png = pixelparty_gateway::snapshot_http::png(&snap, &engine.palette)?;
    std::fs::write(&out, png).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} ({}x{})", out.display(), engine.geometry.width(), engine.geometry.height());
    Ok(())
}

fn export_timelapse(args: &TimelapseArgs) -> Result<()> {
    use pixelparty_gateway::timelapse::{self, CHUNK_UPDATES, Entry, Film, Format, Info};
    let format = Format::of(&args.out).ok_or_else(|| anyhow!("the output must end in .apng, .png or .gif"))?;
    let to_moment = |s: &Option<String>| s.as_deref().map(pixelparty_gateway::backup::parse_time).transpose();
    let (from, to) = (to_moment(&args.from)?, to_moment(&args.to)?);
    // The journal from the first chunk on, read a chunk at a time while the film is written
    // (memory stays one chunk whatever the journal's length); a failed read ends the entries
    // and is reported after.
    let failed: std::cell::RefCell<Option<anyhow::Error>> = std::cell::RefCell::new(None);
    type Pages<'a> = Box<dyn FnMut(u64) -> Result<Vec<Entry>> + 'a>;
    let (info, mut page): (Info, Pages<'_>) = match &args.url {
        Some(url) => {
            let authority = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
            let (status, body) = http_get(&authority, "/canvas/timelapse")?;
            if status != 200 {
                bail!("GET /canvas/timelapse answered {status}: {}", String::from_utf8_lossy(&body));
            }
            let info: Info = serde_json::from_slice(&body)?;
            let chunks = info.chunks;
            let page = move |n: u64| -> Result<Vec<Entry>> {
                if n >= chunks {
                    return Ok(Vec::new());
                }
                let (status, body) = http_get(&authority, &format!("/canvas/timelapse/{n}"))?;
                if status != 200 {
                    bail!("GET /canvas/timelapse/{n} answered {status}");
                }
                timelapse::decode_chunk(&body).map_err(|e| anyhow!("chunk {n}: {e}"))
            };
            (info, Box::new(page))
        }
        None => {
            let config = args.common.load()?;
            let engine = config.engine().map_err(|e| anyhow!(e))?;
            let store = open_store(&config)?;
            let (g, palette) = (engine.geometry, engine.palette.clone());
            let info = store.wait(move |b| {
                let b = b.clone();
                Box::pin(async move { timelapse::info(&b, g, &palette).await })
            })?;
            let chunks = info.chunks;
            let page = move |n: u64| -> Result<Vec<Entry>> {
                if n >= chunks {
                    return Ok(Vec::new());
                }
                let after = n * CHUNK_UPDATES;
                let records = store.wait(move |b| b.journal_after(after, CHUNK_UPDATES as usize))?;
                Ok(records.iter().filter(|r| r.seq <= after + CHUNK_UPDATES).map(Entry::from).collect())
            };
            (info, Box::new(page))
        }
    };
    let mut n = 0u64;
    let mut buffered = std::collections::VecDeque::new();
    let entries = std::iter::from_fn(|| {
        while buffered.is_empty() && n < info.chunks && failed.borrow().is_none() {
            match page(n) {
                Ok(list) => buffered.extend(list),
                Err(e) => *failed.borrow_mut() = Some(e),
            }
            n += 1;
        }
        buffered.pop_front()
    });
    if info.last_seq == 0 {
        bail!("the journal is empty: nothing has been painted");
    }
    if !info.complete {
        eprintln!(
            "note: the journal starts at sequence {} ({} ms); history before it is not kept, so the film starts from a blank canvas there",
            info.first_seq, info.first_time_ms
        );
    }
    let palette = info
        .palette
        .iter()
        .map(|c| {
            let v =
                u32::from_str_radix(c.trim_start_matches('#'), 16).map_err(|_| anyhow!("bad palette colour {c}"))?;
            Ok([(v >> 16) as u8, (v >> 8) as u8, v as u8])
        })
        .collect::<Result<Vec<_>>>()?;
    let film = Film {
        width: info.width,
        height: info.height,
        palette,
        from_ms: from.unwrap_or(info.first_time_ms),
        to_ms: to.unwrap_or(info.last_time_ms),
        frames: args.fps.saturating_mul(args.seconds),
        delay_ms: 1000 / args.fps.max(1),
        scale: args.scale,
    };
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let frames = film.write(entries, format, std::io::BufWriter::new(file)).map_err(|e| anyhow!(e))?;
    if let Some(e) = failed.into_inner() {
        let _ = std::fs::remove_file(&args.out);
        return Err(e.context("reading the journal"));
    }
    println!(
        "wrote {} ({frames} frames of {}x{}, {} ms to {} ms)",
        args.out.display(),
        film.width * film.scale,
        film.height * film.scale,
        film.from_ms,
        film.to_ms
    );
    Ok(())
}

/// `GET path` on a server's public address: the status and the body.
fn http_get(authority: &str, path: &str) -> Result<(u16, Vec<u8>)> {
    use http_body_util::{BodyExt, Empty};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let stream =
            tokio::net::TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let req = hyper::Request::builder().uri(path).header("host", authority).body(Empty::<bytes::Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        // A chunk is at most 28 + 13 × 16384 bytes; nothing this reads is near the bound.
        let body = http_body_util::Limited::new(resp.into_body(), 4 << 20);
        let bytes = body.collect().await.map_err(|e| anyhow!("reading {path}: {e}"))?.to_bytes();
        Ok((status, bytes.to_vec()))
    })
}

/// Opens `fjall:<PATH>` or a `postgres://` URL for `migrate`; a source directory must exist (a
/// mistyped one would be created empty and copied as such). The embedded store is opened
/// without fsyncs of its own: `copy_all` flushes the target once at the end.
fn open_migration_store(spec: &str, source: bool) -> Result<pixelparty_storage::Store> {
    use pixelparty_storage::{Durability, PgConfig, StoreConfig};
    let config = if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        StoreConfig { postgres: Some(PgConfig::new(spec)), ..StoreConfig::new(PathBuf::new()) }
    } else if let Some(path) = spec.strip_prefix("fjall:").filter(|p| !p.is_empty()) {
        let (path, db) = (PathBuf::from(path), std::path::Path::new(path).join("db"));
        if source && !path.is_dir() {
            bail!("no store at {}", path.display());
        }
        StoreConfig { durability: Durability::None, ..StoreConfig::new(if db.is_dir() { db } else { path }) }
    } else {
        bail!("a store is `fjall:<PATH>` or a postgres:// URL, not {spec:?}");
    };
    pixelparty_storage::Store::open(config).map_err(|e| anyhow!("opening {spec}: {e} (is a server using it?)"))
}

fn restore(args: RestoreArgs) -> Result<()> {
    use pixelparty_gateway::backup;
    init_logging("text");
    let config = args.common.load()?;
    let mut s3 = config.backup_s3();
    if let Some(e) = args.s3_endpoint {
        s3.endpoint = e;
    }
    if let Some(r) = args.s3_region {
        s3.region = r;
    }
    s3.allow_http |= args.s3_allow_http;
    let at_ms = args.canvas_at.as_deref().map(backup::parse_time).transpose()?;
    let loc = backup::Location::parse(&args.from, &s3)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if args.list {
        for m in rt.block_on(backup::list(&loc))? {
            println!(
                "{}  {:>12} bytes  {:<8} canvas seq {:<10} journal from {}",
                m.id,
                m.bytes(),
                m.backend,
                m.canvas_seq,
                m.journal_first
            );
        }
        return Ok(());
    }
    let db_dir = config.server.data_dir.join("db");
    if std::fs::read_dir(&db_dir).is_ok_and(|mut d| d.next().is_some()) {
        bail!("{} already holds a store: restore into a new data directory (--data)", db_dir.display());
    }
    let m = rt.block_on(backup::choose(&loc, args.backup.as_deref()))?;
    // Everything --canvas-at needs is settled before anything is restored.
    let base = match at_ms {
        None => None,
        Some(at) => canvas_base(&rt, &loc, &m, at)?,
    };
    std::fs::create_dir_all(&config.server.data_dir)?;
    let staged = rt.block_on(backup::stage(&loc, &m, &config.server.data_dir))?;
    println!(
        "restored backup {} ({} backend, {} keyspaces, {} rows, {} bytes); verified row for row",
        m.id,
        m.backend,
        m.files.len(),
        staged.rows,
        m.bytes()
    );
    if m.backend != "fjall" {
        println!(
            "this backup holds the canvas only: accounts, chat and the journal are PostgreSQL's (restore them with pg_restore)"
        );
    }
    if let Some(at_ms) = at_ms {
        let base = match base {
            None => None,
            Some(b) => {
                let staged_base = rt.block_on(backup::stage(&loc, &b, &config.server.data_dir))?;
                let store = pixelparty_storage::Store::open(pixelparty_storage::StoreConfig::new(staged_base.db()))?;
                let g =
                    store.wait(|b| b.canvas_geometry())?.ok_or_else(|| anyhow!("backup {} holds no canvas", b.id))?;
                println!("base: backup {} (canvas up to sequence {})", b.id, b.canvas_seq);
                Some(store.wait(move |b| b.recover_canvas(g))?)
            }
        };
        // The staged store itself, whatever backend the configuration names.
        let store = pixelparty_storage::Store::open(pixelparty_storage::StoreConfig::new(staged.db()))?;
        let g = store.wait(|b| b.canvas_geometry())?.ok_or_else(|| anyhow!("the backup holds no canvas"))?;
        let then = store.wait(move |b| {
            let b = b.clone();
            Box::pin(async move { pixelparty_storage::canvas::canvas_at_from(&*b, g, base, at_ms).await })
        })?;
        let now = pixelparty_engine::now_ms();
        let changed = store.wait(move |b| {
            let b = b.clone();
            Box::pin(async move { pixelparty_gateway::rewind::write_offline(&*b, g, &then, now).await })
        })?;
        drop(store);
        println!("canvas brought back to {at_ms}: {changed} pixels changed (journaled as restores)");
    }
    staged.put_in_place(&db_dir)?;
    println!("in place: {}", db_dir.display());
    Ok(())
}

/// The older backup whose canvas `--canvas-at at` starts from, when backup `m`'s journal does
/// not reach back to the first update (`None`: it does); refused when nothing can rebuild
/// that moment.
fn canvas_base(
    rt: &tokio::runtime::Runtime,
    loc: &pixelparty_gateway::backup::Location,
    m: &pixelparty_gateway::backup::Manifest,
    at: u64,
) -> Result<Option<pixelparty_gateway::backup::Manifest>> {
    if m.backend != "fjall" {
        bail!(
            "--canvas-at needs the journal, which a PostgreSQL-mode backup does not hold: use `admin rewind` on the cluster"
        );
    }
    if at > m.created_ms {
        bail!("--canvas-at is after backup {} was taken: restore a later backup", m.id);
    }
    // The first sequence the journal holds (none: everything up to the canvas's last one).
    let first = if m.journal_first == 0 { m.canvas_seq + 1 } else { m.journal_first };
    if first <= 1 {
        return Ok(None);
    }
    let older = rt.block_on(pixelparty_gateway::backup::list(loc))?.into_iter().rev().find(|b| {
        b.backend == "fjall" && b.created_ms <= at && b.created_ms <= m.created_ms && b.canvas_seq + 1 >= first
    });
    older.map(Some).ok_or_else(|| {
        anyhow!(
            "backup {}'s journal starts at sequence {first}, and no backup taken before that moment reaches it",
            m.id
        )
    })
}

fn migrate(from: &str, to: &str) -> Result<()> {
    init_logging("text");
    let source = open_migration_store(from, true)?;
    let target = open_migration_store(to, false)?;
    // The copy runs on the source's runtime and drives the target's operations from there.
    let into = target.wait(|b| Box::pin(std::future::ready(Ok(b.clone()))))?;
    let report = source.wait(move |b| {
        let src = b.clone();
        Box::pin(async move { pixelparty_storage::copy::copy_all(&*src, &*into).await })
    });
    let report = report.map_err(|e| anyhow!("migrating {from} to {to}: {e}"))?;
    println!("{report}");
    report.check().map_err(|e| anyhow!("verification failed: {e}"))?;
    println!("verified: the target's counts and checksums equal the source's");
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(&cli.serve),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Admin(args)) => admin(args),
        Some(Command::User(cmd)) => user(cmd),
        Some(Command::ExportPng { out, at, common }) => export_png(out, at, &common),
        Some(Command::Migrate { from, to }) => migrate(&from, &to),
        Some(Command::Restore(args)) => restore(args),
        Some(Command::Export(ExportCommand::Timelapse(args))) => export_timelapse(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn help(path: &[&str]) -> String {
        let mut cmd = Cli::command();
        cmd.build();
        let mut at = &mut cmd;
        for name in path {
            at = at.find_subcommand_mut(name).unwrap_or_else(|| panic!("no subcommand {name}"));
        }
        at.render_long_help().to_string()
    }

    #[test]
    fn admin_options_go_before_or_after_the_action() {
        for argv in [
            &["pixelparty", "admin", "--url", "http://h:1", "--token", "t", "ban", "alice"][..],
            &["pixelparty", "admin", "ban", "alice", "--url", "http://h:1", "--token", "t"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let Some(Command::Admin(a)) = cli.command else { panic!("{argv:?}: not admin") };
            assert_eq!((a.url.as_str(), a.token.as_deref()), ("http://h:1", Some("t")), "{argv:?}");
            assert!(matches!(a.action, AdminAction::Ban { ref username, .. } if username == "alice"));
        }
        let data = Cli::try_parse_from(["pixelparty", "admin", "stats", "--data", "/srv/pp"]).unwrap();
        assert!(matches!(data.command, Some(Command::Admin(a)) if a.data == std::path::Path::new("/srv/pp")));
    }

    #[test]
    fn each_command_takes_and_lists_only_its_own_options() {
        assert!(Cli::try_parse_from(["pixelparty", "admin", "--http", "127.0.0.1:1", "stats"]).is_err());
        assert!(Cli::try_parse_from(["pixelparty", "user", "create", "bob", "--cooldown-ms", "5"]).is_err());
        assert!(Cli::try_parse_from(["pixelparty", "serve", "--http", "127.0.0.1:1", "--shards", "2"]).is_ok());
        assert!(Cli::try_parse_from(["pixelparty", "--http", "127.0.0.1:1"]).is_ok(), "serve is the default");
        let ban = help(&["admin", "ban"]);
        assert!(
            ban.contains("--reason") && ban.contains("--url") && !ban.contains("--http") && !ban.contains("--shards"),
            "{ban}"
        );
        let create = help(&["user", "create"]);
        assert!(
            create.contains("--data") && !create.contains("--cooldown-ms") && !create.contains("--http"),
            "{create}"
        );
        let export = help(&["export-png"]);
        assert!(export.contains("--config") && !export.contains("--width"), "{export}");
    }
}
