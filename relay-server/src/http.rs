//! The relay's one HTTP listener: `/metrics` (Prometheus text), `/health`, `/api/relay-info`,
//! and the built web app for every other path.

use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use darkswap_proto::RelayInfo;
use prometheus_client::registry::Registry;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeader;

/// What the HTTP handlers read; the swarm loop keeps `relay_info` and `health` current.
pub struct HttpState {
    /// False when the operator turned metrics off: `/metrics` then says so (404).
    pub metrics_enabled: bool,
    pub registry: Registry,
    pub relay_info: RwLock<RelayInfo>,
    pub health: RwLock<Health>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    pub status: &'static str,
    pub peer_id: String,
    pub uptime_secs: u64,
    pub connections: u64,
    pub reservations: u64,
}

pub fn router(state: Arc<HttpState>, web_dir: &Path) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/api/relay-info", get(relay_info))
        .with_state(state);
    let index = web_dir.join("index.html");
    if index.is_file() {
        let app = ServeDir::new(web_dir).fallback(ServeFile::new(index));
        // The app's own Content-Security-Policy is in its index.html (scripts/web-integrity),
        // where it holds wherever the files are served; a <meta> policy cannot forbid framing.
        let app = SetResponseHeader::overriding(
            app,
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
        let app = SetResponseHeader::overriding(
            app,
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let app = SetResponseHeader::overriding(
            app,
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        api.fallback_service(app)
    } else {
        api.fallback(web_app_missing)
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    if !state.metrics_enabled {
        return (
            StatusCode::NOT_FOUND,
            "metrics are disabled in this relay's configuration (metrics = false)\n",
        )
            .into_response();
    }
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn health(State(state): State<Arc<HttpState>>) -> Response {
    match state.health.read() {
        Ok(h) => Json(h.clone()).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "health state unavailable\n",
        )
            .into_response(),
    }
}

async fn relay_info(State(state): State<Arc<HttpState>>) -> Response {
    let info = match state.relay_info.read() {
        Ok(info) => info.clone(),
        Err(_) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "relay info unavailable\n",
            )
                .into_response()
        }
    };
    if info.addrs.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "relay is not listening yet\n",
        )
            .into_response();
    }
    let mut response = Json(info).into_response();
    // Web apps served from elsewhere (another relay, a developer's machine) may read this.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn web_app_missing() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "The DarkSwap web app is not built on this relay.\n\
         Build it with `trunk build --release` (see README) or point --web-dir at a built copy.\n",
    )
        .into_response()
}
