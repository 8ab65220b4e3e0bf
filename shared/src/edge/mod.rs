//! The HTTP edge: `http` requests in, `http` responses out, for Lambda (through
//! `lambda_http`, see `lambda`) and the local server (through axum) alike.
//!
//! Routing follows the route table (`routes::Route`), then the contract's checks
//! run in its order: body size (413), method (405, with `Allow`), and only then
//! the handler (token, fields). An unknown path is 404 `not_found`. Method
//! routing is ours rather than axum's because the contract puts 413 before 405.

#[cfg(test)]
mod api_tests;
pub mod authenticate;
pub mod body;
pub mod error;
pub mod events;
pub mod lambda;
pub mod request;
pub mod routes;

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use serde_json::Value;

use crate::domain::account::UserId;
use crate::domain::app::AppId;
use crate::domain::login_log::Origin;
use crate::domain::session::Caller;
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse, MAX_BODY_BYTES};
use crate::edge::routes::{Handler, Route, check_method};
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics;
use crate::runtime::metrics::Metric;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What every route answers with.
pub type HttpResponse = http::Response<Full<Bytes>>;

/// Answers one request for `handler` (see `dispatch`). Logs one line per request.
pub async fn respond<B>(handler: &impl Handler, request: http::Request<B>) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    respond_with(request, |request| dispatch(handler, request)).await
}

/// Reads an `http` request into an `ApiRequest` and its answer back into an
/// `http` response: the path without a stage prefix, a body of at most 16 KiB
/// (413 without reading more), the invocation's deadline. Logs one line.
pub async fn respond_with<B, F, Fut>(request: http::Request<B>, answer: F) -> HttpResponse
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    F: FnOnce(ApiRequest) -> Fut,
    Fut: Future<Output = ApiResponse>,
{
    let started = Instant::now();
    let path = routing_path(&request);
    let caller = caller_of(&request);
    let origin = origin_of(&request);
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let response = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Err(_) => ApiError::PayloadTooLarge.into_response(),
        Ok(body) => {
            let mut request = ApiRequest::new(&method, &path, deadline_of(&parts.extensions))
                .with_body(body.to_bytes().to_vec());
            request.query = parts.uri.query().map(str::to_owned);
            request.caller = caller;
            request.origin = origin;
            for (name, value) in &parts.headers {
                // A header that is not text carries nothing a route reads.
                if let Ok(value) = value.to_str() {
                    request = request.with_header(name.as_str(), value);
                }
            }
            answer(request).await
        }
    };
    log_request(&method, &path, &response, started);
    into_http(response)
}

/// The route table's dispatch: the route at the request's path (404 if none or
/// not served by `handler`), then the checks and the handler (see `checked`).
pub async fn dispatch(handler: &impl Handler, request: ApiRequest) -> ApiResponse {
    match Route::at(&request.path).filter(|route| handler.serves(*route)) {
        Some(route) => {
            checked(route.methods(), request, |request| {
                handler.handle(route, request)
            })
            .await
        }
        None => not_found(),
    }
}

/// The checks every route runs before its own, in the contract's order: body
/// size (413), then method (405 with `Allow`). The local server's own routes
/// use it too.
pub async fn checked<F, Fut>(allowed: &'static str, request: ApiRequest, serve: F) -> ApiResponse
where
    F: FnOnce(ApiRequest) -> Fut,
    Fut: Future<Output = ApiResponse>,
{
    if request.body.len() > MAX_BODY_BYTES {
        return ApiError::PayloadTooLarge.into_response();
    }
    if let Err(err) = check_method(&request.method, allowed) {
        return err.into_response();
    }
    serve(request).await
}

/// 404 in the contract's shape: API Gateway routes before us, so this is a path
/// the deployment forwards but no function serves.
pub fn not_found() -> ApiResponse {
    ApiError::NotFound.into_response()
}

/// The path the route table is matched against: without the API Gateway stage
/// prefix (a named stage puts `/<stage>` in front of the path, and lambda_http
/// adds it to REST API paths) and without a trailing slash. For a REST API, the
/// resource API Gateway matched (see `rest_resource`).
fn routing_path<B>(request: &http::Request<B>) -> String {
    let rest_route = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context
            .resource_path
            .as_deref()
            .and_then(|resource| rest_resource(resource, request.path_parameters_ref())),
        _ => None,
    };
    let path = rest_route.as_deref().unwrap_or(request.uri().path());
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV1(context)) if rest_route.is_none() => {
            context.stage.as_deref()
        }
        _ => None,
    };
    let path = stage
        .filter(|stage| *stage != "$default" && !stage.is_empty())
        .and_then(|stage| path.strip_prefix('/')?.strip_prefix(stage))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path);
    match path.trim_end_matches('/') {
        "" => "/".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// A REST API event's route: the resource API Gateway matched (`/login`), or
/// for a greedy `…/{proxy+}` resource its prefix and the `proxy` parameter. The
/// event's `path` is no route: behind a custom domain's base path mapping it
/// starts with the base path (`/v1/login`). `None` for a resource with other
/// parameters, where the path is all there is.
fn rest_resource(
    resource: &str,
    parameters: Option<&lambda_http::aws_lambda_events::query_map::QueryMap>,
) -> Option<String> {
    if !resource.starts_with('/') {
        return None;
    }
    if !resource.contains('{') {
        return Some(resource.to_owned());
    }
    let prefix = resource.strip_suffix("/{proxy+}")?;
    if prefix.contains('{') {
        return None;
    }
    let proxy = parameters?.first("proxy")?;
    Some(format!("{prefix}/{}", proxy.trim_start_matches('/')))
}

/// Who API Gateway's authorizer said is calling: its context, which API Gateway
/// puts in the event's `requestContext.authorizer` (`.lambda` for payload 2.0).
/// A client cannot set it; nothing else is read for identity.
fn caller_of<B>(request: &http::Request<B>) -> Option<Caller> {
    let fields = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => &context.authorizer.as_ref()?.fields,
        RequestContext::ApiGatewayV1(context) => &context.authorizer.fields,
        _ => return None,
    };
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    Some(Caller {
        user_id: UserId::parse(&text("userId")?)?,
        appid: text("appid").and_then(|appid| AppId::parse(&appid)),
        openid: text("openid")?,
        unionid: text("unionid"),
        // REST API Gateway hands context values on as strings.
        expires_at: fields
            .get("expiresAt")
            .and_then(|value| value.as_i64().or_else(|| value.as_str()?.parse().ok()))
            .unwrap_or_default(),
    })
}

/// Where the request came from: the client IP API Gateway saw (its request
/// context; for an ALB, or the local server, the first `X-Forwarded-For`
/// address) and the `User-Agent` header.
fn origin_of<B>(request: &http::Request<B>) -> Origin {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let from_context = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => None,
    };
    let forwarded = || {
        header("x-forwarded-for")
            .and_then(|list| list.split(',').next().map(|first| first.trim().to_owned()))
    };
    // A client sets its User-Agent: at most this much of it is kept per entry.
    const USER_AGENT_CHARS: usize = 256;
    Origin {
        source_ip: from_context.or_else(forwarded).filter(|ip| !ip.is_empty()),
        user_agent: header("user-agent")
            .map(|agent| agent.chars().take(USER_AGENT_CHARS).collect()),
    }
}

/// The answer budget: the invocation's deadline when Lambda gave one.
fn deadline_of(extensions: &http::Extensions) -> Deadline {
    Deadline::for_request(
        extensions
            .get::<lambda_runtime::Context>()
            .map(|context| context.deadline),
    )
}

/// The one log line per request (method, path, status, latency, error code) and
/// its metric (`Requests` by outcome). Never headers or body: they carry the
/// token and ciphertexts.
pub fn log_request(method: &str, path: &str, response: &ApiResponse, started: Instant) {
    metrics::count(
        Metric::Requests,
        &[("Outcome", response.error.unwrap_or("ok"))],
    );
    tracing::info!(
        method,
        path,
        status = response.status,
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        error = response.error.unwrap_or(""),
        "request"
    );
}

pub fn into_http(response: ApiResponse) -> HttpResponse {
    let mut http = http::Response::new(Full::new(Bytes::from(response.body)));
    *http.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        // Our header names are constants and values plain ASCII: nothing is skipped.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            http.headers_mut().append(name, value);
        }
    }
    http
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_origin_keeps_the_client_ip_and_a_bounded_user_agent() {
        let request = http::Request::builder()
            .header("user-agent", "M".repeat(10_000))
            .header("x-forwarded-for", "198.51.100.4, 10.0.0.1")
            .body(())
            .unwrap();
        let origin = origin_of(&request);
        assert_eq!(origin.source_ip.as_deref(), Some("198.51.100.4"));
        assert_eq!(origin.user_agent.map(|agent| agent.len()), Some(256));
    }

    /// Echoes what the edge handed over, on the routes it is given.
    pub(crate) struct Echo(pub &'static [Route]);

    impl Handler for Echo {
        fn serves(&self, route: Route) -> bool {
            self.0.contains(&route)
        }

        async fn handle(&self, route: Route, request: ApiRequest) -> ApiResponse {
            ApiResponse::json(
                200,
                &json!({
                    "route": route.path(),
                    "method": request.method,
                    "verify": request.query_param("verify"),
                    "auth": request.header("Authorization"),
                    "body": String::from_utf8_lossy(&request.body),
                }),
            )
        }
    }

    async fn send(method: &str, uri: &str, body: Vec<u8>) -> (u16, http::HeaderMap, Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", "Bearer x")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = respond(&Echo(&[Route::Login, Route::Session]), request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn routes_by_the_table() {
        let (status, _, body) = send("POST", "/login/", b"{}".to_vec()).await;
        assert_eq!(status, 200);
        assert_eq!(body["route"], "/login");
        assert_eq!(body["auth"], "Bearer x");
        let (status, _, body) = send("GET", "/session?verify=we%63hat", vec![]).await;
        assert_eq!((status, body["verify"].as_str()), (200, Some("wechat")));
    }

    #[tokio::test]
    async fn unknown_and_unserved_paths_are_404() {
        for path in ["/", "/nope", "/phone", "/loginx", "/login/x"] {
            let (status, _, body) = send("POST", path, vec![]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (404, Some("not_found")),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn size_then_method() {
        let (status, headers, body) = send("PUT", "/session", vec![]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (405, Some("method_not_allowed"))
        );
        assert_eq!(headers["allow"], "GET, POST, DELETE");
        // 413 comes first, whatever the method.
        let (status, _, body) = send("PUT", "/session", vec![b' '; MAX_BODY_BYTES + 1]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (413, Some("payload_too_large"))
        );
        // The limit is inclusive.
        let (status, _, _) = send("POST", "/login", vec![b' '; MAX_BODY_BYTES]).await;
        assert_eq!(status, 200);
    }
}
