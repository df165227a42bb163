//! Fabric v0.6's JSON-RPC 2.0 endpoint, `POST /chaincode` (`core/rest/rest_api.go`,
//! `ProcessChaincode`): methods `deploy`, `invoke` and `query`, its checks in its order
//! with its error codes, HTTP statuses and texts, and notifications answered with no body.
//!
//! On today's model (docs/rest.md): `deploy` installs a package (a package file, or a
//! chaincode directory cchost packages), commits the next definition of the chaincode
//! through `_lifecycle` with `init_required`, and runs the constructor (`ctorMsg`) as its
//! init transaction; `invoke` is the Gateway's submit (endorse, sign, order), answered
//! with the transaction id once ordered, or after its commit with `?wait=commit`; `query`
//! is the Gateway's evaluate. The endpoint is a client of the node's own peer services,
//! as v0.6's REST server was a client of its peer: what it does, a Gateway client could.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cchost_proto::protos::TxValidationCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{Client, DefinitionSpec};
use crate::node::ClientProfile;
use crate::node::identities::load_msp;
use crate::proposal::DevIdentity;

/// How the endpoint runs.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// The node it is a client of.
    pub profile: ClientProfile,
    /// Whether every request must name its identity (`secureContext`).
    pub security: bool,
    /// The node runs in dev mode: `deploy` defines chaincode started by hand.
    pub dev_mode: bool,
    /// The largest request body, bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send its headers, and then its body.
    pub read_timeout: Duration,
    /// How long `deploy` and `invoke?wait=commit` wait for a commit.
    pub commit_timeout: Duration,
}

/// The endpoint's state.
#[derive(Debug)]
pub struct Rest {
    config: RestConfig,
    client: Client,
    identities: Mutex<HashMap<String, Arc<DevIdentity>>>,
    /// One deploy at a time: each reads the current sequence and commits the next.
    deploys: tokio::sync::Mutex<()>,
}

/// A JSON-RPC error: the HTTP status it is sent with, its code and its `data` text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RpcError {
    http: StatusCode,
    code: i64,
    data: String,
}

impl RpcError {
    fn new(http: StatusCode, code: i64, data: impl Into<String>) -> Self {
        Self {
            http,
            code,
            data: data.into(),
        }
    }

    /// An error found while processing a valid request: HTTP 200.
    fn processing(code: i64, data: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, code, data)
    }
}

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const INTERNAL_ERROR: i64 = -32603;
const REGISTRATION_MISSING: i64 = -32000;
const DEPLOY_FAILURE: i64 = -32001;
const INVOKE_FAILURE: i64 = -32002;
const QUERY_FAILURE: i64 = -32003;

/// The standard message of `code` (JSON-RPC 2.0's, and v0.6's for -32000..-32003).
fn standard_message(code: i64) -> &'static str {
    match code {
        PARSE_ERROR => "Parse error",
        INVALID_REQUEST => "Invalid Request",
        METHOD_NOT_FOUND => "Method not found",
        INVALID_PARAMS => "Invalid params",
        REGISTRATION_MISSING => "Registration missing",
        DEPLOY_FAILURE => "Deployment failure",
        INVOKE_FAILURE => "Invocation failure",
        QUERY_FAILURE => "Query failure",
        _ => "Internal error",
    }
}

const READ_FAILED: &str = "Internal JSON-RPC error when reading request body.";

/// The request, as v0.6 decoded it (`rpcRequest`). Unknown members are ignored.
#[derive(Debug, Deserialize)]
struct RpcRequest {
    jsonrpc: Option<String>,
    method: Option<String>,
    params: Option<ChaincodeSpec>,
    /// A number, a string or null (a notification has no `id` member at all).
    #[serde(default)]
    id: Option<RequestId>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
enum RequestId {
    Number(serde_json::Number),
    Text(String),
}

/// `ChaincodeSpec` in protobuf-JSON form (camelCase or the proto's own names).
#[derive(Debug, Default, Deserialize)]
struct ChaincodeSpec {
    #[serde(rename = "type", default)]
    kind: Option<ChaincodeType>,
    #[serde(rename = "chaincodeID", alias = "chaincodeId", alias = "chaincode_id")]
    chaincode_id: Option<ChaincodeId>,
    #[serde(rename = "ctorMsg", alias = "ctor_msg", alias = "input")]
    ctor_msg: Option<CtorMsg>,
    #[serde(rename = "secureContext", alias = "secure_context")]
    secure_context: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChaincodeId {
    #[serde(default)]
    path: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

/// v0.6's `{function, args}`, or the later `{args}` with the function first.
#[derive(Debug, Default, Deserialize)]
struct CtorMsg {
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    args: Vec<String>,
}

/// The chaincode type enum, by number or name; cchost adds `WASM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChaincodeType {
    Undefined,
    Golang,
    Node,
    Car,
    Java,
    Wasm,
}

impl<'de> Deserialize<'de> for ChaincodeType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let name = match &value {
            Value::Number(n) => match n.as_u64() {
                Some(0) => "UNDEFINED".to_owned(),
                Some(1) => "GOLANG".to_owned(),
                Some(2) => "NODE".to_owned(),
                Some(3) => "CAR".to_owned(),
                Some(4) => "JAVA".to_owned(),
                _ => n.to_string(),
            },
            Value::String(s) => s.to_ascii_uppercase(),
            other => other.to_string(),
        };
        Ok(match name.as_str() {
            "UNDEFINED" => Self::Undefined,
            "GOLANG" => Self::Golang,
            "NODE" => Self::Node,
            "CAR" => Self::Car,
            "JAVA" => Self::Java,
            "WASM" => Self::Wasm,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown chaincode type {value}: GOLANG (1), NODE (2), CAR (3), JAVA (4) or WASM"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Deploy,
    Invoke,
    Query,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Invoke => "invoke",
            Self::Query => "query",
        }
    }
}

/// What the request's id makes of the answer.
#[derive(Debug, Clone)]
enum Reply {
    /// A notification: no body at all.
    Nothing,
    /// A request (`null` when its id could not be read).
    To(Option<RequestId>),
}

impl Reply {
    fn error(&self, error: RpcError) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "error": {
                "code": error.code,
                "message": standard_message(error.code),
                "data": error.data,
            },
            "id": self.id(),
        });
        self.send(error.http, body)
    }

    fn ok(&self, message: String) -> Response {
        let body = json!({
            "jsonrpc": "2.0",
            "result": { "status": "OK", "message": message },
            "id": self.id(),
        });
        self.send(StatusCode::OK, body)
    }

    fn id(&self) -> Value {
        match self {
            Self::To(Some(id)) => serde_json::to_value(id).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    fn send(&self, status: StatusCode, body: Value) -> Response {
        match self {
            Self::Nothing => status.into_response(),
            Self::To(_) => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response(),
        }
    }
}

/// The router of the endpoint.
pub fn router(rest: Arc<Rest>) -> axum::Router {
    axum::Router::new()
        .route("/chaincode", axum::routing::post(chaincode))
        .with_state(rest)
}

impl Rest {
    /// The endpoint of the node `config.profile` names (connected at the first request).
    pub fn new(config: RestConfig) -> anyhow::Result<Arc<Self>> {
        let client = Client::connect_lazy(config.profile.clone())?;
        Ok(Arc::new(Self {
            config,
            client,
            identities: Mutex::new(HashMap::new()),
            deploys: tokio::sync::Mutex::new(()),
        }))
    }

    /// The identity `name` (`User1`, `Admin` or `User1@org1.example.com`: a folder
    /// under the organisation's `users/`), or the node's default client.
    fn identity(&self, name: Option<&str>) -> Result<Arc<DevIdentity>, RpcError> {
        let unknown = || {
            RpcError::processing(
                REGISTRATION_MISSING,
                "User not logged in. Use the '/registrar' endpoint to obtain a security token.",
            )
        };
        let profile = &self.config.profile;
        let (key, msp) = match name {
            None => (String::new(), profile.user_msp.clone()),
            Some(name) => {
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "@._-".contains(c))
                    && !name.starts_with('.');
                if !valid {
                    return Err(unknown());
                }
                (
                    name.to_owned(),
                    user_msp(&profile.user_msp, name).ok_or_else(unknown)?,
                )
            }
        };
        if let Some(identity) = lock(&self.identities).get(&key) {
            return Ok(Arc::clone(identity));
        }
        if !msp.is_dir() {
            return Err(unknown());
        }
        let identity = Arc::new(load_msp(&msp, &profile.msp_id).map_err(|e| {
            RpcError::processing(
                INTERNAL_ERROR,
                format!("the identity in {} cannot be loaded: {e}", msp.display()),
            )
        })?);
        lock(&self.identities).insert(key, Arc::clone(&identity));
        Ok(identity)
    }

    async fn deploy(
        &self,
        spec: &ChaincodeSpec,
        id: &ChaincodeId,
        args: Vec<Vec<u8>>,
        identity: &DevIdentity,
    ) -> anyhow::Result<String> {
        let _one = self.deploys.lock().await;
        let wait = self.config.commit_timeout;
        let name = if self.config.dev_mode {
            // Chaincode started by hand registers as name:version.
            let version = if id.version.is_empty() {
                "1.0"
            } else {
                &id.version
            };
            let definition = DefinitionSpec {
                name: id.name.clone(),
                version: version.to_owned(),
                sequence: self.client.current_sequence(&id.name).await? + 1,
                init_required: true,
                validation_parameter: Vec::new(),
                wasm_fuel: 0,
                wasm_memory: 0,
            };
            let package_id = format!("{}:{version}", id.name);
            self.client.approve(&definition, &package_id, wait).await?;
            self.client.commit(&definition, wait).await?;
            id.name.clone()
        } else {
            let package = package(spec.kind.unwrap_or(ChaincodeType::Undefined), id).await?;
            let parsed = crate::package::ChaincodePackage::parse(&package)
                .with_context(|| format!("{} is not a chaincode package", id.path))?;
            let name = if id.name.is_empty() {
                name_of_label(&parsed.metadata().label)
            } else {
                id.name.clone()
            };
            // Each deploy is the next sequence; unless the request names a version, the
            // sequence is the version, so that each deploy's constructor runs (Fabric
            // initialises a chaincode once per version).
            let sequence = self.client.current_sequence(&name).await? + 1;
            let definition = DefinitionSpec {
                name: name.clone(),
                version: if id.version.is_empty() {
                    sequence.to_string()
                } else {
                    id.version.clone()
                },
                sequence,
                init_required: true,
                validation_parameter: Vec::new(),
                wasm_fuel: 0,
                wasm_memory: 0,
            };
            self.client
                .deploy_definition(package, definition, wait)
                .await?;
            name
        };
        // The constructor runs as the definition's init transaction.
        let submitted = self
            .client
            .submit_transaction(identity, &name, args, true, Some(wait))
            .await
            .map_err(|s| anyhow::anyhow!("the init transaction failed: {}", status_text(&s)))?;
        if let Some(status) = submitted.status
            && status.code != TxValidationCode::Valid
        {
            bail!(
                "the init transaction {} was committed as invalid ({}) in block {}",
                status.txid,
                status.code.as_str_name(),
                status.block
            );
        }
        Ok(name)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The MSP folder of user `name` beside the default user's (`users/<name>@<domain>/msp`).
fn user_msp(default: &Path, name: &str) -> Option<PathBuf> {
    let user_dir = default.parent()?;
    let users = user_dir.parent()?;
    let folder = if name.contains('@') {
        name.to_owned()
    } else {
        let domain = user_dir.file_name()?.to_str()?.split_once('@')?.1;
        format!("{name}@{domain}")
    };
    Some(users.join(folder).join("msp"))
}

/// A chaincode name from a package label (`basic_1.0` → `basic_1_0`): Fabric's names are
/// letters and digits joined by single `-` or `_`.
fn name_of_label(label: &str) -> String {
    label
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .flat_map(|part| part.split('-'))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// The package at `id.path`: a package file as it is, or a chaincode directory packaged
/// by its type (a Rust crate for wasm, a Node chaincode).
async fn package(kind: ChaincodeType, id: &ChaincodeId) -> anyhow::Result<Vec<u8>> {
    let path = PathBuf::from(&id.path);
    let metadata =
        std::fs::metadata(&path).with_context(|| format!("the path {} cannot be read", id.path))?;
    if metadata.is_file() {
        return std::fs::read(&path).with_context(|| format!("reading {}", id.path));
    }
    let kind = match kind {
        ChaincodeType::Undefined if path.join("Cargo.toml").is_file() => ChaincodeType::Wasm,
        ChaincodeType::Undefined if path.join("package.json").is_file() => ChaincodeType::Node,
        other => other,
    };
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(name_of_label)
        .unwrap_or_default();
    let label = if id.name.is_empty() {
        format!("{base}_1.0")
    } else {
        format!("{}_1.0", id.name)
    };
    let dir = tempfile::tempdir()?;
    let output = dir.path().join("package.tar.gz");
    let out = output.clone();
    match kind {
        ChaincodeType::Wasm => {
            tokio::task::spawn_blocking(move || {
                crate::packaging::package_crate(&path, &label, &out, None)
            })
            .await??;
        }
        ChaincodeType::Node => {
            tokio::task::spawn_blocking(move || {
                crate::packaging::package_node_dir(&path, &label, &out)
            })
            .await??;
        }
        other => bail!(
            "packaging {other:?} chaincode directories is not supported yet: give the path of \
             a package file (peer lifecycle chaincode package)"
        ),
    }
    Ok(std::fs::read(&output)?)
}

/// The text of a Gateway error: its details' messages (the endorser's or orderer's
/// words, e.g. the chaincode's message), else its message.
fn status_text(status: &tonic::Status) -> String {
    let details = crate::gateway::error_details(status);
    if details.is_empty() {
        status.message().to_owned()
    } else {
        details
            .iter()
            .map(|d| d.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Whether the query string asks to wait for the commit (`?wait=commit`).
fn wait_for_commit(query: Option<&str>) -> Result<bool, RpcError> {
    let mut wait = false;
    for pair in query.unwrap_or_default().split('&') {
        match pair.split_once('=') {
            Some(("wait", "commit")) => wait = true,
            Some(("wait", other)) => {
                return Err(RpcError::new(
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    format!("Unknown wait {other:?}: the one value is wait=commit."),
                ));
            }
            _ => {}
        }
    }
    Ok(wait)
}

/// `POST /chaincode`.
async fn chaincode(State(rest): State<Arc<Rest>>, request: Request) -> Response {
    let unknown = Reply::To(None);
    let wait = match wait_for_commit(request.uri().query()) {
        Ok(wait) => wait,
        Err(e) => return unknown.error(e),
    };
    let limit = rest.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return unknown.error(too_large(limit));
    }
    let body = match tokio::time::timeout(
        rest.config.read_timeout,
        axum::body::to_bytes(request.into_body(), limit),
    )
    .await
    {
        Err(_) => {
            return unknown.error(RpcError::new(
                StatusCode::REQUEST_TIMEOUT,
                INTERNAL_ERROR,
                format!(
                    "{READ_FAILED} The body did not arrive within {:?} (rest.readTimeout).",
                    rest.config.read_timeout
                ),
            ));
        }
        Ok(Err(e)) if is_length_limit(&e) => return unknown.error(too_large(limit)),
        Ok(Err(_)) => {
            return unknown.error(RpcError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR,
                READ_FAILED,
            ));
        }
        Ok(Ok(body)) => body,
    };
    match parse(&body) {
        Err((e, reply)) => reply.error(e),
        Ok((request, reply)) => match process(&rest, request, wait).await {
            Ok(message) => reply.ok(message),
            Err(e) => reply.error(e),
        },
    }
}

fn too_large(limit: usize) -> RpcError {
    RpcError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        INTERNAL_ERROR,
        format!("{READ_FAILED} The body exceeds {limit} bytes (rest.maxBodyBytes)."),
    )
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The checks up to the method's name, in v0.6's order. An error comes with the reply
/// it is sent as (a notification's errors have no body either).
fn parse(body: &[u8]) -> Result<(RpcRequest, Reply), (RpcError, Reply)> {
    let bad = StatusCode::BAD_REQUEST;
    let unknown = || Reply::To(None);
    if body.is_empty() {
        return Err((
            RpcError::new(
                bad,
                INVALID_REQUEST,
                "Client must supply a payload for chaincode requests.",
            ),
            unknown(),
        ));
    }
    let unmarshal = |e: serde_json::Error| {
        (
            RpcError::new(
                bad,
                PARSE_ERROR,
                format!("Error unmarshalling chaincode request payload: {e}"),
            ),
            unknown(),
        )
    };
    let value: Value = serde_json::from_slice(body).map_err(unmarshal)?;
    let notification = value.as_object().is_some_and(|o| !o.contains_key("id"));
    let request: RpcRequest = serde_json::from_value(value).map_err(unmarshal)?;
    let reply = if notification {
        Reply::Nothing
    } else {
        Reply::To(request.id.clone())
    };
    let refuse = |text: &str| Err((RpcError::new(bad, INVALID_REQUEST, text), reply.clone()));
    match (&request.jsonrpc, &request.method) {
        (None, _) => refuse("Missing JSON RPC 2.0 version string."),
        (Some(v), _) if v != "2.0" => refuse("Invalid JSON RPC 2.0 version string. Must be 2.0."),
        (_, None) => refuse("Missing JSON RPC 2.0 method string."),
        _ => Ok((request, reply)),
    }
}

/// The checks from the method on, then the work: the result's message.
async fn process(rest: &Rest, request: RpcRequest, wait: bool) -> Result<String, RpcError> {
    let method = match request.method.as_deref().unwrap_or_default() {
        "deploy" => Method::Deploy,
        "invoke" => Method::Invoke,
        "query" => Method::Query,
        _ => {
            return Err(RpcError::new(
                StatusCode::NOT_FOUND,
                METHOD_NOT_FOUND,
                "Requested method does not exist.",
            ));
        }
    };
    let Some(spec) = request.params else {
        return Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMS,
            format!(
                "Client must supply ChaincodeSpec for chaincode {} request.",
                method.name()
            ),
        ));
    };
    let invalid = |text: &str| Err(RpcError::processing(INVALID_PARAMS, text));
    let Some(id) = &spec.chaincode_id else {
        return invalid("Payload must contain a ChaincodeID.");
    };
    match method {
        Method::Deploy if rest.config.dev_mode && id.name.trim().is_empty() => {
            return invalid("Chaincode name may not be blank in development mode.");
        }
        Method::Deploy if !rest.config.dev_mode && id.path.trim().is_empty() => {
            return invalid("Chaincode path may not be blank.");
        }
        Method::Invoke | Method::Query if id.name.trim().is_empty() => {
            return invalid("Chaincode name may not be blank.");
        }
        _ => {}
    }
    let args: Vec<Vec<u8>> = match &spec.ctor_msg {
        Some(ctor) => ctor
            .function
            .iter()
            .filter(|f| !f.is_empty())
            .chain(&ctor.args)
            .map(|a| a.clone().into_bytes())
            .collect(),
        None => Vec::new(),
    };
    if args.is_empty() {
        return invalid("Payload must contain a CtorMsg with a Chaincode function name.");
    }
    let user = spec.secure_context.as_deref().filter(|u| !u.is_empty());
    if rest.config.security && user.is_none() {
        return invalid("Must supply username for chaincode when security is enabled.");
    }
    let identity = rest.identity(user)?;
    match method {
        Method::Deploy => rest.deploy(&spec, id, args, &identity).await.map_err(|e| {
            RpcError::processing(
                DEPLOY_FAILURE,
                format!("Error when deploying chaincode: {e:#}"),
            )
        }),
        Method::Invoke => {
            let failed = |text: String| {
                RpcError::processing(
                    INVOKE_FAILURE,
                    format!("Error when invoking chaincode: {text}"),
                )
            };
            let submitted = rest
                .client
                .submit_transaction(
                    &identity,
                    &id.name,
                    args,
                    false,
                    wait.then_some(rest.config.commit_timeout),
                )
                .await
                .map_err(|s| failed(status_text(&s)))?;
            match submitted.status {
                Some(status) if status.code != TxValidationCode::Valid => Err(failed(format!(
                    "transaction {} was committed as invalid ({}) in block {}",
                    status.txid,
                    status.code.as_str_name(),
                    status.block
                ))),
                _ => Ok(submitted.txid),
            }
        }
        Method::Query => rest
            .client
            .evaluate(&identity, &id.name, args)
            .await
            .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
            .map_err(|s| {
                RpcError::processing(
                    QUERY_FAILURE,
                    format!("Error when querying chaincode: {}", status_text(&s)),
                )
            }),
    }
}

/// Serves `router` on `listener` until `shutdown`: HTTP/1.1; a client that has not sent
/// its request headers within `read_timeout` is disconnected (the body's own timeout is
/// the handler's); at most 1,024 connections at once. At `shutdown` idle connections
/// close and requests in flight get up to 10 s to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    read_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    const MAX_CONNECTIONS: usize = 1024;
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted.
                tracing::warn!(error = %e, "the REST endpoint could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(read_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("REST requests still in flight after 10 s are left to finish on their own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_labels_are_fabric_chaincode_names() {
        assert_eq!(name_of_label("basic_1.0"), "basic_1_0");
        assert_eq!(name_of_label("my-cc..v2+x"), "my_cc_v2_x");
    }

    #[test]
    fn a_user_name_finds_its_folder_beside_the_default_user() {
        let default = Path::new("/d/users/User1@org1.example.com/msp");
        assert_eq!(
            user_msp(default, "Admin").unwrap(),
            Path::new("/d/users/Admin@org1.example.com/msp")
        );
        assert_eq!(
            user_msp(default, "User1@org1.example.com").unwrap(),
            Path::new("/d/users/User1@org1.example.com/msp")
        );
    }
}
