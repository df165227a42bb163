//! The operations HTTP server (Fabric's `operations.listenAddress`): `GET /healthz`,
//! `GET /metrics`, `GET|PUT /logspec`, `GET /version`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::ledger::StateStore;
use crate::metrics::Metrics;

/// A component `/healthz` checks.
pub trait HealthCheck: Send + Sync {
    /// Its name in `failed_checks` (`docker`, `statedb`, ...).
    fn component(&self) -> &str;
    /// `Err(reason)` when it is unhealthy.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// The Docker daemon answers a ping.
#[derive(Debug)]
pub struct DockerCheck(pub crate::runtime::docker::DockerRuntime);

impl HealthCheck for DockerCheck {
    fn component(&self) -> &str {
        "docker"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.0.ping())
    }
}

/// The state database answers a read.
#[derive(Debug)]
pub struct StateDbCheck(pub Arc<dyn StateStore>);

impl HealthCheck for StateDbCheck {
    fn component(&self) -> &str {
        "statedb"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // A read transaction on the database answers.
            self.0
                .has_channel("healthz")
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

/// Installs a new log filter spec, or says why it cannot.
type ApplySpec = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The live log filter: the current spec and how to change it.
pub struct LogSpec {
    current: Mutex<String>,
    apply: ApplySpec,
}

impl std::fmt::Debug for LogSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSpec")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl LogSpec {
    /// A spec that starts as `current`; `apply` installs a new one or says why not.
    pub fn new(
        current: impl Into<String>,
        apply: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            current: Mutex::new(current.into()),
            apply: Box::new(apply),
        }
    }

    fn get(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, spec: &str) -> Result<(), String> {
        (self.apply)(spec)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = spec.to_owned();
        Ok(())
    }
}

/// What the operations endpoints report.
#[derive(Clone)]
pub struct Operations {
    /// Served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Run by `/healthz`.
    pub checks: Vec<Arc<dyn HealthCheck>>,
    /// Read and changed by `/logspec`.
    pub logspec: Arc<LogSpec>,
}

impl std::fmt::Debug for Operations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operations").finish_non_exhaustive()
    }
}

/// The operations routes.
pub fn router(operations: Operations) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/logspec", any(logspec))
        .route("/version", get(version))
        .with_state(Arc::new(operations))
}

async fn healthz(State(ops): State<Arc<Operations>>) -> Response {
    let mut failed: Vec<Value> = Vec::new();
    for check in &ops.checks {
        if let Err(reason) = check.check().await {
            failed.push(json!({"component": check.component(), "reason": reason}));
        }
    }
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "OK", "time": now_rfc3339()})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "Service Unavailable", "time": now_rfc3339(), "failed_checks": failed})),
        )
            .into_response()
    }
}

async fn metrics(State(ops): State<Arc<Operations>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.metrics.encode(),
    )
        .into_response()
}

/// The body of `PUT /logspec`.
#[derive(serde::Deserialize)]
struct SpecBody {
    spec: String,
}

/// Fabric's `/logspec`: GET reads the spec, PUT changes it, any other method is a 400
/// with Fabric's text (not a 405).
async fn logspec(
    State(ops): State<Arc<Operations>>,
    method: Method,
    body: axum::body::Bytes,
) -> Response {
    let bad =
        |error: String| (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response();
    match method {
        Method::GET => Json(json!({"spec": ops.logspec.get()})).into_response(),
        Method::PUT => {
            let spec = match serde_json::from_slice::<SpecBody>(&body) {
                Ok(SpecBody { spec }) => spec,
                Err(e) => return bad(format!("the body must be {{\"spec\": \"...\"}}: {e}")),
            };
            match ops.logspec.set(&spec) {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => bad(e),
            }
        }
        other => bad(format!("invalid request method: {other}")),
    }
}

async fn version() -> Response {
    Json(json!({
        "CommitSHA": option_env!("CCHOST_COMMIT").unwrap_or("unknown"),
        "Version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// The current UTC time as RFC 3339, as Go's `time.Time` marshals it
/// (`2026-11-22T06:30:00.123456789Z`).
fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}
