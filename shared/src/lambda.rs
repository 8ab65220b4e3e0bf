//! The Lambda edge: API Gateway HTTP API (payload 2.0) events in, responses out.
//!
//! We read the event ourselves instead of through lambda_http: its conversion
//! `expect`s a valid base64 body and needs every `requestContext` field, so a
//! malformed event would abort the process (we build with `panic = "abort"`)
//! instead of getting a 400. Here any JSON event gets an answer in the contract's
//! shape.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiRequest, ApiResponse, Handler, MAX_BODY_BYTES, log_request};
use crate::deadline::Deadline;
use crate::error::ApiError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct HttpApiEvent {
    raw_path: Option<String>,
    raw_query_string: Option<String>,
    headers: HashMap<String, String>,
    body: Option<String>,
    is_base64_encoded: bool,
    request_context: RequestContext,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RequestContext {
    http: HttpDescription,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HttpDescription {
    method: Option<String>,
    path: Option<String>,
}

/// The payload 2.0 response API Gateway expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpApiResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
}

impl From<ApiResponse> for HttpApiResponse {
    fn from(response: ApiResponse) -> Self {
        Self {
            status_code: response.status,
            headers: response
                .headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            // Our bodies are JSON text or empty.
            body: String::from_utf8_lossy(&response.body).into_owned(),
            is_base64_encoded: false,
        }
    }
}

/// Turns an event into a request, or into the answer for an unreadable event.
fn request_from_event(event: Value, deadline: Deadline) -> Result<ApiRequest, ApiError> {
    let event: HttpApiEvent = serde_json::from_value(event).map_err(|_| {
        ApiError::InvalidRequest("The event is not an API Gateway HTTP API request.".into())
    })?;
    let body = match event.body {
        None => Vec::new(),
        Some(body) if event.is_base64_encoded => {
            // Refuse an oversized body before spending time decoding it.
            if body.len() / 4 * 3 > MAX_BODY_BYTES + 3 {
                return Err(ApiError::PayloadTooLarge);
            }
            STANDARD.decode(body.trim()).map_err(|_| {
                ApiError::InvalidRequest("The request body is not valid base64.".into())
            })?
        }
        Some(body) => body.into_bytes(),
    };
    let method = event
        .request_context
        .http
        .method
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::InvalidRequest(
                "The event is not an API Gateway HTTP API request: requestContext.http.method is missing.".into(),
            )
        })?;
    Ok(ApiRequest {
        method: method.to_ascii_uppercase(),
        path: event
            .raw_path
            .or(event.request_context.http.path)
            .unwrap_or_else(|| "/".into()),
        query: event.raw_query_string.filter(|q| !q.is_empty()),
        headers: event
            .headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect(),
        body,
        deadline,
    })
}

/// Handles one API Gateway event end to end and logs one line for it: method,
/// path, status, latency and error code. Never the headers or the body.
pub async fn handle_event(
    handler: &impl Handler,
    event: Value,
    invocation_deadline_epoch_ms: Option<u64>,
) -> HttpApiResponse {
    let started = Instant::now();
    let deadline = Deadline::for_request(invocation_deadline_epoch_ms);
    let (method, path, response) = match request_from_event(event, deadline) {
        Ok(request) => {
            let (method, path) = (request.method.clone(), request.path.clone());
            (method, path, handler.handle(request).await)
        }
        Err(err) => (String::new(), String::new(), err.into_response()),
    };
    log_request(&method, &path, &response, started);
    response.into()
}

/// Serves `handler` on the Lambda Runtime API until the sandbox is shut down.
pub async fn run(handler: impl Handler) -> Result<(), lambda_runtime::Error> {
    let handler = Arc::new(handler);
    // Boxed: the runtime's future nests deep enough to exceed rustc's layout
    // recursion limit in the callers' `main`.
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let handler = Arc::clone(&handler);
            async move {
                let deadline = Some(event.context.deadline);
                Ok::<_, lambda_runtime::Error>(
                    handle_event(&*handler, event.payload, deadline).await,
                )
            }
        },
    )))
    .await
}

/// Logs to stdout (CloudWatch), one line per event, no colours or timestamps
/// (CloudWatch adds its own). `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG` holding a
/// plain level) sets the level; info by default.
pub fn init_logging() {
    let level = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.trim().parse().ok())
        .unwrap_or(tracing::level_filters::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Ends start-up with a message naming what is wrong: a function that cannot
/// serve correctly should not serve at all.
pub fn or_exit<T, E: Display>(function: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            eprintln!("{function}: {err}");
            tracing::error!("{function}: {err}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Echo;

    impl Handler for Echo {
        async fn handle(&self, request: ApiRequest) -> ApiResponse {
            ApiResponse::json(
                200,
                &json!({
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "auth": request.header("Authorization"),
                    "body": String::from_utf8_lossy(&request.body),
                }),
            )
        }
    }

    async fn echo(event: Value) -> (u16, Value) {
        let response = handle_event(&Echo, event, None).await;
        (
            response.status_code,
            serde_json::from_str(&response.body).unwrap(),
        )
    }

    #[tokio::test]
    async fn reads_a_payload_2_event() {
        let event = json!({
            "version": "2.0",
            "routeKey": "POST /login",
            "rawPath": "/login",
            "rawQueryString": "a=1",
            "headers": {"Authorization": "Bearer x", "content-type": "text/plain"},
            "requestContext": {"http": {"method": "post", "path": "/login"}},
            "body": "eyJjb2RlIjoiYWJjIn0=",
            "isBase64Encoded": true
        });
        let (status, body) = echo(event).await;
        assert_eq!(status, 200);
        assert_eq!(body["method"], "POST");
        assert_eq!(body["path"], "/login");
        assert_eq!(body["query"], "a=1");
        assert_eq!(body["auth"], "Bearer x");
        assert_eq!(body["body"], r#"{"code":"abc"}"#);
    }

    #[tokio::test]
    async fn unreadable_events_get_a_400_not_a_crash() {
        for event in [
            json!([1, 2]),
            json!({"headers": {"a": 1}}),
            json!({"not": "an event"}),
            json!({"body": "@@@", "isBase64Encoded": true, "requestContext": {"http": {"method": "POST"}}}),
        ] {
            let (status, body) = echo(event).await;
            assert_eq!(status, 400);
            assert_eq!(body["error"], "invalid_request");
        }
    }

    #[tokio::test]
    async fn body_size_is_counted_after_base64_decoding() {
        // 16384 bytes decoded is 21848 base64 characters: allowed through.
        let body = STANDARD.encode(vec![b'a'; MAX_BODY_BYTES]);
        assert!(body.len() > MAX_BODY_BYTES);
        let event = json!({"body": body, "isBase64Encoded": true, "requestContext": {"http": {"method": "POST"}}});
        let (status, answer) = echo(event).await;
        assert_eq!(status, 200);
        assert_eq!(answer["body"].as_str().unwrap().len(), MAX_BODY_BYTES);
    }

    #[tokio::test]
    async fn oversized_base64_body_is_413() {
        let body = STANDARD.encode(vec![b'a'; MAX_BODY_BYTES * 2]);
        let event = json!({"body": body, "isBase64Encoded": true, "requestContext": {"http": {"method": "POST"}}});
        let (status, body) = echo(event).await;
        assert_eq!(status, 413);
        assert_eq!(body["error"], "payload_too_large");
    }
}
