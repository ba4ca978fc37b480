//! `miniworker serve` (docs/spec.md section 9): many sessions in one process, one
//! WebSocket connection per mini-program instance, on tokio and axum.
//!
//! - `config.rs`: the flags, and the TOML file that supplies them;
//! - `auth.rs`: session tokens (HS256 JWT) and the limits they lower;
//! - `cache.rs`: projects by SHA-256, unpacked once from tar archives;
//! - `host.rs`: the shared state: admission, readiness, the drain phase;
//! - `session.rs`: one session from `open` to `exit`;
//! - `metrics.rs`: `/metrics`;
//! - `playground.rs`: the `--playground` page;
//! - this file: the listeners, the admin endpoints, signals and the drain.

mod auth;
mod cache;
pub mod config;
mod host;
mod metrics;
mod playground;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use miniworker::{HostCaps, Runtime};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::flags;
use auth::Auth;
use cache::Cache;
pub use config::ServeArgs;
use host::{Host, Phase, Settings};

/// The WebSocket subprotocol of protocol 1.
const SUBPROTOCOL: &str = "miniworker.v1";

/// Runs the server until a signal and the drain after it; the exit code.
pub fn serve(args: ServeArgs) -> u8 {
    match setup(&args) {
        Ok(host) => {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
                eprintln!("miniworker serve: cannot start the event loop");
                return crate::HOST_ERROR;
            };
            let code = rt.block_on(listen(host, &args));
            rt.shutdown_timeout(Duration::from_secs(1));
            code
        }
        Err(e) => {
            eprintln!("miniworker serve: {e}");
            crate::BAD
        }
    }
}

/// Checks the settings and makes the host's state.
fn setup(args: &ServeArgs) -> Result<(Arc<Host>, Duration), String> {
    let ceilings = args.limits.limits()?;
    let drain = flags::seconds("--drain-timeout", args.drain_timeout)?;
    let ping_interval = flags::seconds("--ping-interval", args.ping_interval)?;
    let open_timeout = flags::seconds("--open-timeout", args.open_timeout)?;
    if ping_interval.is_zero() || open_timeout.is_zero() {
        return Err("--ping-interval and --open-timeout take a positive number of seconds".into());
    }
    let key = match (&args.auth_key, &args.auth_key_file) {
        (Some(key), _) => Some(key.as_bytes().to_vec()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("--auth-key-file {}: {e}", path.display()))?
                .trim_end()
                .as_bytes()
                .to_vec(),
        ),
        (None, None) => None,
    };
    if key.as_ref().is_some_and(|k| k.len() < 16) {
        return Err("the auth key must be at least 16 bytes".into());
    }
    let cache = Cache::new(
        args.cache_dir.as_deref(),
        args.max_project_bytes.0,
        args.max_project_files,
    )
    .map_err(|e| format!("the project cache: {e}"))?;
    let asked = args.capacity as usize;
    // Slots for two contexts per session, reserved up front (faster starts).
    let caps = HostCaps::default().instances(asked).pool(asked.saturating_mul(2));
    let runtime = Runtime::with_caps(caps).map_err(|e| e.to_string())?;
    // A run session takes two contexts: the capacity never promises more
    // sessions than the machine holds (`/readyz`, `/metrics` and admission
    // all use it).
    let machine = runtime.stats();
    let capacity = asked.min(machine.context_capacity / 2);
    if capacity < asked {
        tracing::warn!(
            asked,
            capacity,
            bound_by = machine.capacity_bound_by,
            "--capacity lowered to what this machine holds"
        );
    }
    let settings = Settings {
        capacity,
        tenant_sessions: args.tenant_sessions.map(|n| n as usize),
        tenant_memory: args.tenant_memory.map(|s| s.0),
        tenant_opens_per_second: args.tenant_opens_per_second,
        ceilings,
        ping_interval,
        open_timeout,
    };
    let host = Host::new(settings, runtime, Auth::new(key.as_deref())?, cache);
    Ok((Arc::new(host), drain))
}

async fn listen((host, drain): (Arc<Host>, Duration), args: &ServeArgs) -> u8 {
    let (data, admin) = match (
        TcpListener::bind(&args.listen).await,
        TcpListener::bind(&args.admin).await,
    ) {
        (Ok(data), Ok(admin)) => (data, admin),
        (Err(e), _) => {
            eprintln!("miniworker serve: --listen {}: {e}", args.listen);
            return crate::BAD;
        }
        (_, Err(e)) => {
            eprintln!("miniworker serve: --admin {}: {e}", args.admin);
            return crate::BAD;
        }
    };
    let (Ok(data_addr), Ok(admin_addr)) = (data.local_addr(), admin.local_addr()) else {
        return crate::HOST_ERROR;
    };
    // One line on stdout says where it listens (ports chosen by the system included).
    println!(
        "{}",
        serde_json::json!({ "listening": data_addr.to_string(), "admin": admin_addr.to_string() })
    );
    tracing::info!(%data_addr, %admin_addr, "serving");

    let max_frame =
        (host.cache.max_bytes as usize).max(host.settings.ceilings.message_bytes() * 2) + (1 << 20);
    let mut data_app = Router::new().route(
        "/v1/session",
        get(
            move |state: State<Arc<Host>>, headers: HeaderMap, ws: WebSocketUpgrade| {
                upgrade(state, headers, ws, max_frame)
            },
        ),
    );
    if args.playground {
        data_app = data_app.merge(playground::routes());
    }
    let data_app = data_app.with_state(host.clone());
    let admin_app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(host.clone());
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let data_server = tokio::spawn(
        // Lines are small and latency matters: no Nagle delay on sessions.
        axum::serve(data.tap_io(|tcp| drop(tcp.set_nodelay(true))), data_app)
            .with_graceful_shutdown(until_stopped(stopped.clone()))
            .into_future(),
    );
    let admin_server = tokio::spawn(
        axum::serve(admin, admin_app)
            .with_graceful_shutdown(until_stopped(stopped))
            .into_future(),
    );

    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return crate::HOST_ERROR;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!(?drain, "draining");
    host.set_phase(Phase::Draining);
    let expire = {
        let host = host.clone();
        tokio::spawn(async move {
            tokio::time::sleep(drain).await;
            tracing::info!("drain timeout: ending the sessions left");
            host.set_phase(Phase::Expired);
        })
    };
    host.all_ended().await;
    expire.abort();
    let _ = stop.send(true);
    let _ = data_server.await;
    let _ = admin_server.await;
    tracing::info!("drained");
    0
}

/// `GET /v1/session`: the token is checked before the upgrade (401).
async fn upgrade(
    State(host): State<Arc<Host>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
    max_frame: usize,
) -> Response {
    match host.auth.check(&headers) {
        Err(why) => {
            host.metrics.opened("unauthorized");
            (StatusCode::UNAUTHORIZED, format!("{why}\n")).into_response()
        }
        Ok(grant) => ws
            .protocols([SUBPROTOCOL])
            .max_message_size(max_frame)
            .max_frame_size(max_frame)
            .on_upgrade(move |socket| session::serve(host, socket, grant)),
    }
}

/// `/readyz`: 200 while serving below the readiness threshold, else 503.
async fn readyz(State(host): State<Arc<Host>>) -> Response {
    if host.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(host): State<Arc<Host>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        host.metrics.encode(),
    )
        .into_response()
}
