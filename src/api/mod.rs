//! The HTTP API, the web console and `/metrics`, served by `disclose serve` when
//! `[serve] http_addr` is set.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /healthz` | none | the process answers |
//! | `GET /readyz` | none (details: bearer) | the ledger answers and the broker (or spool directory) is reachable |
//! | `GET /metrics` | bearer | Prometheus text format ([`metrics`]) |
//! | `GET /api/jobs` | bearer | jobs, newest first, paged, filtered by status, category, scope, date |
//! | `GET /api/jobs/{id}` | bearer | decision, refusals with articles, outcomes per channel and recipient, audit entries |
//! | `POST /api/jobs` | bearer | submit a signed job: the queue's own intake ([`crate::intake::Intake::admit`]) |
//! | `POST /api/jobs/{id}/cancel` | bearer | the ledger's cancel, as `disclose cancel` |
//! | `GET /api/openapi.json` | bearer | the OpenAPI 3.1 document of the above |
//! | `GET /`, `GET /jobs/{id}` | bearer or console cookie | the console ([`console`]) |
//!
//! Both probes need no token, so that a load balancer or Kubernetes can ask them without
//! holding a secret; `/readyz` names its problems (which may name hosts and paths) only to a
//! caller with the token.
//!
//! Auth: one bearer token, read at start-up from the environment variable that
//! `[serve] api_token_env` names (STYLE: secrets only from the environment). Compared in
//! constant time over SHA-256 digests, so neither the content nor the length leaks by timing.
//! Without a token configured, everything but `/healthz` answers 503 naming the variable: an
//! API that carries personal data is never open by omission. A browser cannot send a bearer
//! header, so `GET|POST /login` exchanges the token for an `HttpOnly`, `SameSite=Strict`
//! cookie that only the console's read-only pages accept (never the API's `POST`s, so a forged
//! cross-site request can change nothing).
//!
//! Personal data in answers is masked (STYLE; the measures' Art 17 keeps it in the ledger for
//! proof, not for display): names keep their first character, phone numbers, e-mail addresses,
//! openids and userids appearing in ids or provider details keep only their edges.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::app::App;
use crate::clock;
use crate::config::QueueSection;
use crate::deliver::Engine;
use crate::intake::{DecisionKind, Intake};
use crate::ledger::{AuditEntry, DeliveryRow, JobSummary, Ledger, RefusalRow, audit};
use crate::shutdown::Shutdown;

pub mod console;
pub mod metrics;

/// The OpenAPI document, checked against the router in the tests.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Jobs `GET /api/jobs` filters and pages over: the newest this many (the ledger's listing has
/// no filter of its own yet; the PostgreSQL ledger is where that belongs).
pub const LIST_WINDOW: usize = 10_000;
/// Deliveries shown per job (`disclose status ID` shows 200; the counts per channel are complete).
pub const DELIVERIES_SHOWN: usize = 1_000;
const COOKIE: &str = "disclose_console";

pub struct ApiState {
    pub ledger: Arc<dyn Ledger>,
    pub intake: Arc<Intake>,
    pub engine: Arc<Engine>,
    pub queue: QueueSection,
    pub wake: Arc<Notify>,
    /// SHA-256 of the bearer token; `None`: no token configured.
    token: Option<[u8; 32]>,
    /// SHA-256 of the console cookie's value (itself derived from the token, so a stolen cookie
    /// opens the read-only console but never the API).
    console: Option<[u8; 32]>,
    /// The variable that should hold the token, for the refusal's message.
    token_env: String,
    /// The ledger's count of finished deliveries per state, and when it was taken (see
    /// [`metrics::FINAL_COUNTS_MAX_AGE`]).
    pub(crate) final_counts: metrics::FinalCounts,
}

impl ApiState {
    pub fn new(app: &App, wake: Arc<Notify>) -> ApiState {
        let token_env = app.config.serve.api_token_env.clone();
        let secret = std::env::var(&token_env)
            .ok()
            .filter(|t| !t.trim().is_empty());
        let token = secret.as_deref().map(|t| digest(t.trim()));
        let console = secret.as_deref().map(|t| digest(&cookie_value(t.trim())));
        ApiState {
            ledger: app.ledger.clone(),
            intake: app.intake.clone(),
            engine: app.engine.clone(),
            queue: app.config.queue.clone(),
            wake,
            token,
            console,
            token_env,
            final_counts: Default::default(),
        }
    }

    /// Whether `presented` is the token, in constant time.
    fn admits(&self, presented: &str) -> bool {
        same(self.token.as_ref(), presented)
    }

    /// Whether `presented` is the console cookie's value, in constant time.
    fn admits_cookie(&self, presented: &str) -> bool {
        same(self.console.as_ref(), presented)
    }
}

fn same(want: Option<&[u8; 32]>, presented: &str) -> bool {
    let Some(want) = want else {
        return false;
    };
    let got = digest(presented);
    want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn digest(s: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref());
    out
}

/// The console cookie's value for a token: a digest, not the token.
fn cookie_value(token: &str) -> String {
    crate::ledger::audit::sha256_hex(format!("disclose console\0{token}").as_bytes())
}

pub type Shared = Arc<ApiState>;

/// Every route; `/healthz` and `/login` outside the auth layer.
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics::scrape))
        .route("/api/jobs", get(list_jobs).post(submit_job))
        .route("/api/jobs/{id}", get(job_detail))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/openapi.json", get(openapi))
        .route_layer(middleware::from_fn_with_state(state.clone(), bearer));
    let console = Router::new()
        .route("/", get(console::index))
        .route("/jobs/{id}", get(console::job))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            bearer_or_cookie,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/login", get(console::login_get).post(console::login_post))
        .merge(api)
        .merge(console)
        .layer(DefaultBodyLimit::max(crate::job::MAX_JOB_BYTES + 1))
        .with_state(state)
}

/// Listen on `[serve] http_addr` (port 0 picks a free one). Done before anything else starts, so
/// an address in use stops the service at start-up instead of leaving it running deaf.
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("[serve] http_addr {addr}: cannot listen: {e}"))
}

/// Serve until `shutdown`; the address actually bound is logged.
pub async fn run(
    state: Shared,
    listener: tokio::net::TcpListener,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    if state.token.is_none() {
        tracing::warn!(
            variable = %state.token_env,
            "no API token in the environment: the HTTP API answers only /healthz"
        );
    }
    tracing::info!(%bound, "HTTP API and console listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}

/// An error answer: `{"error": "..."}` with the status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

fn unconfigured(state: &ApiState) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "no API token is configured: set the environment variable {} (named by [serve] api_token_env) and restart; until then only /healthz answers",
            state.token_env
        ),
    )
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn bearer(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if state.token.is_none() {
        return unconfigured(&state);
    }
    match bearer_token(req.headers()) {
        Some(t) if state.admits(t) => next.run(req).await,
        Some(_) => unauthorized("the bearer token is not the API's token"),
        None => unauthorized("an Authorization: Bearer <token> header is required"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"disclose\""),
    );
    r
}

async fn bearer_or_cookie(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if state.token.is_none() {
        return unconfigured(&state);
    }
    let by_header = bearer_token(req.headers()).is_some_and(|t| state.admits(t));
    let by_cookie = cookie(req.headers(), COOKIE).is_some_and(|c| state.admits_cookie(&c));
    if by_header || by_cookie {
        next.run(req).await
    } else {
        console::login_page(None)
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

/// `application/x-www-form-urlencoded` and cookie values: `+` is a space, `%XX` a byte.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The console cookie for a correct token.
pub(crate) fn console_cookie(token: &str) -> String {
    format!(
        "{COOKIE}={}; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict",
        cookie_value(token)
    )
}

async fn readyz(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut problems = Vec::new();
    let ledger = state.ledger.clone();
    match tokio::task::spawn_blocking(move || ledger.has_job("readyz")).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("ledger: {e}")),
        Err(e) => problems.push(format!("ledger: the check failed: {e}")),
    }
    match &state.queue.amqp_url {
        Some(url) => {
            if let Err(e) = broker_reachable(url).await {
                problems.push(format!("broker: {e}"));
            }
        }
        None => {
            if !state.queue.spool_dir.is_dir() {
                problems.push(format!(
                    "spool directory {} does not exist",
                    state.queue.spool_dir.display()
                ));
            }
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, axum::Json(json!({"ready": true}))).into_response()
    } else {
        let detail = bearer_token(&headers).is_some_and(|t| state.admits(t));
        let body = if detail {
            json!({"ready": false, "problems": problems})
        } else {
            json!({"ready": false, "problems": format!("{} problem(s); ask with the bearer token for details", problems.len())})
        };
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

/// A TCP connection to the broker's host and port within 2 s. The URL's credentials are never
/// repeated in the message.
async fn broker_reachable(url: &str) -> Result<(), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or("the AMQP URL has no scheme")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = if url.starts_with("amqps://") {
        5671
    } else {
        5672
    };
    let target = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else {
        format!("{hostport}:{default_port}")
    };
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&target),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{target}: {e}")),
        Err(_) => Err(format!("{target}: no answer within 2 s")),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFilter {
    pub status: Option<String>,
    pub category: Option<String>,
    pub scope: Option<String>,
    /// First day (China Standard Time, `YYYY-MM-DD`) of acceptance, inclusive.
    pub from: Option<String>,
    /// Last day of acceptance, inclusive.
    pub to: Option<String>,
    /// 1-based.
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

pub const STATUSES: [&str; 4] = ["scheduled", "in_progress", "completed", "cancelled"];

impl JobFilter {
    fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.status
            && !STATUSES.contains(&s.as_str())
        {
            return Err(format!(
                "status {s:?} is not one of {}",
                STATUSES.join(", ")
            ));
        }
        for (name, d) in [("from", &self.from), ("to", &self.to)] {
            if let Some(d) = d
                && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err()
            {
                return Err(format!("{name} {d:?} is not a date YYYY-MM-DD"));
            }
        }
        if self.per_page.is_some_and(|n| n == 0 || n > 500) {
            return Err("per_page must be between 1 and 500".into());
        }
        if self.page == Some(0) {
            return Err("page counts from 1".into());
        }
        Ok(())
    }

    fn matches(&self, j: &JobSummary) -> bool {
        let day = j.accepted_at.get(..10).unwrap_or("");
        self.status.as_ref().is_none_or(|s| *s == j.status)
            && self.category.as_ref().is_none_or(|c| *c == j.category)
            && self.scope.as_ref().is_none_or(|s| *s == j.scope)
            && self.from.as_ref().is_none_or(|f| day >= f.as_str())
            && self.to.as_ref().is_none_or(|t| day <= t.as_str())
    }
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobPage {
    pub page: usize,
    pub per_page: usize,
    /// Jobs matching the filter among the newest [`LIST_WINDOW`].
    pub total: usize,
    pub window: usize,
    pub jobs: Vec<JobSummary>,
}

pub fn page_of_jobs(ledger: &dyn Ledger, f: &JobFilter) -> Result<JobPage, String> {
    f.check()?;
    let jobs = ledger.jobs(LIST_WINDOW).map_err(|e| e.to_string())?;
    let matching: Vec<JobSummary> = jobs.into_iter().filter(|j| f.matches(j)).collect();
    let per_page = f.per_page.unwrap_or(50);
    let page = f.page.unwrap_or(1);
    let total = matching.len();
    let jobs = matching
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Ok(JobPage {
        page,
        per_page,
        total,
        window: LIST_WINDOW,
        jobs,
    })
}

async fn list_jobs(
    State(state): State<Shared>,
    query: Result<Query<JobFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(f) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let ledger = state.ledger.clone();
    match tokio::task::spawn_blocking(move || page_of_jobs(ledger.as_ref(), &f)).await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Everything about one job, masked: what `GET /api/jobs/{id}` answers and the console shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobDetail {
    pub id: String,
    /// `accepted` or `refused`.
    pub decision: String,
    pub summary: Option<JobSummary>,
    /// Every refusal recorded under this id (a forged or broken attempt, even when a later
    /// correct one was accepted), with its code and article.
    pub refusals: Vec<RefusalRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub deliveries_shown: usize,
    pub audit: Vec<AuditEntry>,
}

pub fn job_detail_of(ledger: &dyn Ledger, id: &str) -> Result<Option<JobDetail>, String> {
    let e = |e: crate::ledger::LedgerError| e.to_string();
    let summary = ledger.job_summary(id).map_err(e)?;
    let refusals: Vec<RefusalRow> = ledger
        .refusals(LIST_WINDOW)
        .map_err(e)?
        .into_iter()
        .filter(|r| r.job_id.as_deref() == Some(id))
        .collect();
    if summary.is_none() && refusals.is_empty() {
        return Ok(None);
    }
    let deliveries: Vec<DeliveryRow> = match &summary {
        Some(_) => ledger
            .deliveries(id, DELIVERIES_SHOWN)
            .map_err(e)?
            .into_iter()
            .map(mask_delivery)
            .collect(),
        None => vec![],
    };
    let now = clock::now();
    let from = summary
        .as_ref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s.accepted_at).ok())
        .or_else(|| {
            refusals
                .iter()
                .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.at).ok())
                .min()
        })
        .unwrap_or(now)
        - chrono::Duration::days(1);
    let to = now + chrono::Duration::days(1);
    let mut entries = Vec::new();
    for kind in [
        audit::JOB_ACCEPTED,
        audit::JOB_REFUSED,
        audit::JOB_CANCELLED,
        audit::DELIVERIES_RECORDED,
    ] {
        entries.extend(
            ledger
                .audit_entries(kind, from, to)
                .map_err(e)?
                .into_iter()
                .filter(|a| about(a, id)),
        );
    }
    entries.sort_by_key(|a| a.seq);
    Ok(Some(JobDetail {
        id: id.to_string(),
        decision: if summary.is_some() {
            "accepted"
        } else {
            "refused"
        }
        .into(),
        deliveries_shown: deliveries.len(),
        summary,
        refusals,
        deliveries,
        audit: entries,
    }))
}

/// Whether an audit entry concerns job `id` (an outcome entry of several jobs names them all).
fn about(a: &AuditEntry, id: &str) -> bool {
    a.job_id.as_deref() == Some(id)
        || a.body
            .get("jobs")
            .and_then(Value::as_array)
            .is_some_and(|jobs| jobs.iter().any(|j| j.as_str() == Some(id)))
}

async fn job_detail(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let ledger = state.ledger.clone();
    let id2 = id.clone();
    match tokio::task::spawn_blocking(move || job_detail_of(ledger.as_ref(), &id2)).await {
        Ok(Ok(Some(d))) => axum::Json(d).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            format!("no job {id:?} in the ledger"),
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /api/jobs`: the body is the signed job, exactly as it would be put on the queue. The
/// decision is recorded before the answer (201 accepted, 200 duplicate, 422 refused with every
/// reason and its article), so an answer is as good as a queue's acknowledgement.
async fn submit_job(State(state): State<Shared>, body: Bytes) -> Response {
    let intake = state.intake.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        let now = clock::now();
        intake.admit(&body, now).map(|v| (v.due_now(now), v))
    })
    .await;
    let (due_now, v) = match verdict {
        Ok(Ok(v)) => v,
        // The ledger is down: nothing was recorded, the client may send it again.
        Ok(Err(e)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the decision could not be recorded, nothing was taken: {e}"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if due_now {
        state.wake.notify_waiters();
    }
    let status = match v.decision {
        DecisionKind::Accepted => StatusCode::CREATED,
        DecisionKind::Duplicate => StatusCode::OK,
        DecisionKind::Refused => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let planned: serde_json::Map<String, Value> = v
        .planned
        .iter()
        .map(|(c, n)| (c.as_str().to_string(), json!(n)))
        .collect();
    (
        status,
        axum::Json(json!({
            "id": v.id,
            "decision": v.decision,
            "refusals": v.refusals,
            "planned": planned,
        })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: String,
}

/// `POST /api/jobs/{id}/cancel` with `{"reason": "..."}`: as `disclose cancel`. 200 with what was
/// cancelled; 409 when nothing was left to cancel (a retraction is then the way, Art 17).
async fn cancel_job(State(state): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let reason = match serde_json::from_slice::<CancelBody>(&body) {
        Ok(b) if !b.reason.trim().is_empty() => b.reason.trim().to_string(),
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "reason must say why {id} is cancelled: it is recorded in the audit trail (Art 17)"
                ),
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"reason\": \"...\"}}: {e}"),
            );
        }
    };
    let ledger = state.ledger.clone();
    let id2 = id.clone();
    let res = tokio::task::spawn_blocking(move || {
        let c = ledger.cancel(&id2, &reason, clock::now())?;
        let refused = c.is_none() && ledger.was_refused(&id2)?;
        Ok::<_, crate::ledger::LedgerError>((c, refused))
    })
    .await;
    match res {
        Ok(Ok((Some(c), _))) if c.cancelled_total() > 0 => (
            StatusCode::OK,
            axum::Json(json!({"id": id, "cancelled": c.cancelled, "untouched": c.untouched})),
        )
            .into_response(),
        Ok(Ok((Some(c), _))) => {
            let hint = if c.handed_over() > 0 {
                format!(
                    "every delivery of {id} has been handed to its channel; to withdraw what went out, dispatch a retraction (\"kind\": \"retraction\", \"corrects\": \"{id}\"; Art 17)"
                )
            } else {
                format!("no delivery of {id} is waiting")
            };
            (
                StatusCode::CONFLICT,
                axum::Json(json!({"error": format!("nothing left to cancel: {hint}"), "untouched": c.untouched})),
            )
                .into_response()
        }
        Ok(Ok((None, true))) => error(
            StatusCode::CONFLICT,
            format!(
                "job {id:?} was refused, so nothing of it was planned and there is nothing to cancel"
            ),
        ),
        Ok(Ok((None, false))) => error(
            StatusCode::NOT_FOUND,
            format!("no job {id:?} in the ledger"),
        ),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A name shown as its first character and one `*` per other character.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// An identifier that is contact data (a phone number, an e-mail address, a WeChat openid or a
/// WeCom userid-like token) masked; directory ids of other shapes as they are.
pub fn mask_contact(s: &str) -> String {
    if let Some((local, domain)) = s.split_once('@') {
        return format!("{}@{domain}", crate::phone::mask(local));
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let phone_like = digits >= 7
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
    // openids are 28 characters of base64url; userids and long opaque tokens alike.
    let token_like = s.len() >= 16
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if phone_like || token_like {
        crate::phone::mask(s)
    } else {
        s.to_string()
    }
}

/// Contact data inside a provider's free text masked word by word.
pub fn mask_text(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| {
                matches!(
                    c,
                    ',' | ';' | ':' | '(' | ')' | '"' | '\'' | '<' | '>' | '[' | ']'
                )
            });
            if core.is_empty() {
                return w.to_string();
            }
            let masked = mask_contact(core);
            if masked == core {
                w.to_string()
            } else {
                w.replacen(core, &masked, 1)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_delivery(mut d: DeliveryRow) -> DeliveryRow {
    // A publication's "recipient" is its page, named by the notice's title: nobody's data.
    if d.role == "page" {
        return d;
    }
    d.recipient = mask_contact(&d.recipient);
    d.name = mask_name(&d.name);
    d.detail = d.detail.as_deref().map(mask_text);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_is_masked() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_contact("+8613812345678"), "138****5678");
        assert_eq!(
            mask_contact("zhang.san@example.gov.cn"),
            mask_contact("zhang.san@example.gov.cn")
        );
        assert!(mask_contact("zhang.san@example.gov.cn").ends_with("@example.gov.cn"));
        assert!(!mask_contact("zhang.san@example.gov.cn").contains("zhang.san"));
        let openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
        assert!(
            !mask_contact(openid).contains("MuAJO_M2pxb1Q9z"),
            "{}",
            mask_contact(openid)
        );
        assert_eq!(mask_contact("m00001"), "m00001");
        let t = mask_text("mailbox full for zhang.san@example.gov.cn (code 552)");
        assert!(!t.contains("zhang.san"), "{t}");
        assert!(t.contains("code 552"), "{t}");
        assert!(!mask_text("number 13812345678: invalid").contains("13812345678"));
    }

    fn percent_encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect()
    }

    #[test]
    fn percent_decoding_reads_forms_and_cookies() {
        assert_eq!(percent_decode("a%2Bb+c%3D"), "a+b c=");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode(&percent_encode("秘 密+=;")), "秘 密+=;");
    }

    #[test]
    fn filters_check_their_values() {
        let bad = JobFilter {
            status: Some("done".into()),
            ..Default::default()
        };
        assert!(bad.check().unwrap_err().contains("done"));
        let bad = JobFilter {
            from: Some("2026-13-01".into()),
            ..Default::default()
        };
        assert!(bad.check().unwrap_err().contains("from"));
        assert!(JobFilter::default().check().is_ok());
    }
}
