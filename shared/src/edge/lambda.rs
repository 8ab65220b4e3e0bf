//! Lambda events in, Lambda responses out, through `lambda_http`: API Gateway
//! HTTP API (payload 2.0), Function URLs, REST API proxy (payload 1.0) and ALB.
//! lambda_http shapes each answer for its source (payload 2.0 with `cookies`,
//! REST with `multiValueHeaders`, ALB with `statusDescription`).
//!
//! lambda_http's conversion `expect`s a valid base64 body and parses a URL built
//! from the Host header, path and stage; with `panic = "abort"` a hostile event
//! would end the process. So every event is checked here against exactly what
//! that conversion does before it is handed over; one that would fail it is
//! answered 400 `invalid_request` (413 for an oversized body), shaped for its
//! source, and an event of no known source gets a payload 2.0 answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use lambda_http::Body as LambdaBody;
pub use lambda_http::Context;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Service, service_fn};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{into_http, log_request, respond};
use crate::edge::error::ApiError;
use crate::edge::request::{ApiResponse, MAX_BODY_BYTES};
use crate::edge::routes::Handler;

/// An invocation's answer: shaped by lambda_http for the event's source, or a
/// payload 2.0 response for an event of no known source.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer<Shaped> {
    Shaped(Shaped),
    Unknown(Box<ApiGatewayV2httpResponse>),
}

/// Answers one invocation: `event` is its payload as JSON text, `context` what
/// the runtime said of it (its deadline among others).
pub async fn handle_event<H: Handler>(
    handler: &H,
    event: &str,
    context: Context,
) -> impl Serialize + Send + use<H> {
    let started = Instant::now();
    let Some(request) = parse(event) else {
        let refusal = ApiError::InvalidRequest(
            "The event is not an HTTP request from API Gateway, a Function URL or an ALB.".into(),
        )
        .into_response();
        log_request("", "", &refusal, started);
        return Answer::Unknown(Box::new(payload_v2(refusal)));
    };
    let event = LambdaEvent::new(request, context);
    let answer = match refusal(&event.payload) {
        None => {
            let mut adapter = Adapter::from(service_fn(|request| async {
                Ok::<_, Infallible>(respond(handler, request).await)
            }));
            adapter.call(event).await
        }
        Some(err) => {
            let response = err.into_response();
            log_request("", "", &response, started);
            let mut adapter = Adapter::from(service_fn(move |_| {
                let response = into_http(response.clone());
                async move { Ok::<_, Infallible>(response) }
            }));
            adapter
                .call(LambdaEvent::new(repaired(event.payload), event.context))
                .await
        }
    };
    match answer {
        Ok(response) => Answer::Shaped(response),
        Err(never) => match never {},
    }
}

/// The event as lambda_http reads it. Payload 2.0 (the HTTP API the template
/// deploys, Function URLs) is tried first: lambda_http tries REST first, which
/// for a payload 2.0 event is a whole parse thrown away on every request.
fn parse(event: &str) -> Option<LambdaRequest> {
    match serde_json::from_str::<ApiGatewayV2httpRequest>(event) {
        Ok(request) if request.version.as_deref() == Some("2.0") => {
            Some(LambdaRequest::ApiGatewayV2(request))
        }
        _ => serde_json::from_str(event).ok(),
    }
}

/// Serves `handler` on the Lambda Runtime API until the sandbox is shut down.
pub async fn run(handler: impl Handler) -> Result<(), lambda_runtime::Error> {
    let handler = Arc::new(handler);
    // Boxed: the runtime's future nests deep enough to exceed rustc's layout
    // recursion limit in the callers' `main`.
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| {
            let handler = Arc::clone(&handler);
            async move {
                Ok::<_, Infallible>(
                    handle_event(&*handler, event.payload.get(), event.context).await,
                )
            }
        },
    )))
    .await
}

/// What lambda_http's conversion would fail on, as the client's error.
fn refusal(request: &LambdaRequest) -> Option<ApiError> {
    let (body, base64, uri_builds) = match request {
        LambdaRequest::ApiGatewayV2(event) => {
            let path = path_with_stage(
                event.request_context.stage.as_deref(),
                event.raw_path.as_deref(),
            );
            let host = host_of(&event.headers).or(event.request_context.domain_name.as_deref());
            let query = event.raw_query_string.as_deref().filter(|q| !q.is_empty());
            (
                &event.body,
                event.is_base64_encoded,
                uri_builds(&path, &event.headers, host, query),
            )
        }
        // REST and ALB query strings are re-encoded from maps by lambda_http,
        // which always yields a valid query: only the path and host can fail.
        LambdaRequest::ApiGatewayV1(event) => {
            let path = path_with_stage(
                event.request_context.stage.as_deref(),
                event.path.as_deref(),
            );
            let host = host_of(&event.headers).or(event.request_context.domain_name.as_deref());
            (
                &event.body,
                event.is_base64_encoded,
                uri_builds(&path, &event.headers, host, None),
            )
        }
        LambdaRequest::Alb(event) => {
            let path = event.path.as_deref().unwrap_or_default();
            let host = host_of(&event.headers);
            (
                &event.body,
                event.is_base64_encoded,
                uri_builds(path, &event.headers, host, None),
            )
        }
        _ => {
            return Some(ApiError::InvalidRequest(
                "The event's source is not supported.".into(),
            ));
        }
    };
    if let (Some(body), true) = (body, base64) {
        // Refuse an oversized body before spending time decoding it.
        if body.len() / 4 * 3 > MAX_BODY_BYTES + 3 {
            return Some(ApiError::PayloadTooLarge);
        }
        if STANDARD.decode(body).is_err() {
            return Some(ApiError::InvalidRequest(
                "The request body is marked isBase64Encoded but is not valid base64.".into(),
            ));
        }
    }
    if !uri_builds {
        return Some(ApiError::InvalidRequest(
            "The request's Host header, path or query string does not form a valid URL.".into(),
        ));
    }
    None
}

/// The event with everything lambda_http could fail on removed, so that the
/// refusal is still shaped for the event's source.
fn repaired(mut request: LambdaRequest) -> LambdaRequest {
    fn strip(headers: &mut HeaderMap) {
        headers.remove(http::header::HOST);
        headers.remove("x-forwarded-proto");
    }
    match &mut request {
        LambdaRequest::ApiGatewayV2(event) => {
            (event.body, event.is_base64_encoded) = (None, false);
            event.raw_path = Some("/".into());
            event.raw_query_string = None;
            event.request_context.stage = None;
            event.request_context.domain_name = None;
            event.cookies = None;
            strip(&mut event.headers);
        }
        LambdaRequest::ApiGatewayV1(event) => {
            (event.body, event.is_base64_encoded) = (None, false);
            event.path = Some("/".into());
            event.request_context.stage = None;
            event.request_context.domain_name = None;
            event.query_string_parameters = QueryMap::default();
            event.multi_value_query_string_parameters = QueryMap::default();
            strip(&mut event.headers);
            strip(&mut event.multi_value_headers);
        }
        LambdaRequest::Alb(event) => {
            (event.body, event.is_base64_encoded) = (None, false);
            event.path = Some("/".into());
            event.query_string_parameters = QueryMap::default();
            event.multi_value_query_string_parameters = QueryMap::default();
            strip(&mut event.headers);
            strip(&mut event.multi_value_headers);
        }
        _ => {}
    }
    request
}

fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
}

/// lambda_http's `apigw_path_with_stage`: a named stage is put in front of the path.
fn path_with_stage(stage: Option<&str>, path: Option<&str>) -> String {
    let path = path.unwrap_or_default();
    if std::env::var_os("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH").is_some() {
        return path.into();
    }
    match stage {
        None | Some("$default") => path.into(),
        Some(stage) if path.starts_with(&format!("/{stage}/")) => path.into(),
        Some(stage) => format!("/{stage}{path}"),
    }
}

/// Whether lambda_http's `build_request_uri` and request builder accept these:
/// the same URL parse, then the same `http::Uri` parse.
fn uri_builds(path: &str, headers: &HeaderMap, host: Option<&str>, query: Option<&str>) -> bool {
    let url = match host {
        None => match url::Url::parse(&format!("http://localhost{path}")) {
            Ok(url) => url.path().to_owned(),
            Err(_) => return false,
        },
        Some(host) => {
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|scheme| scheme.to_str().ok())
                .unwrap_or("https");
            match url::Url::parse(&format!("{scheme}://{host}{path}")) {
                Ok(url) => url.to_string(),
                Err(_) => return false,
            }
        }
    };
    let uri = match query {
        Some(query) => format!("{url}?{query}"),
        None => url,
    };
    http::Uri::try_from(uri).is_ok()
}

/// A payload 2.0 answer, for an event whose source is unknown.
fn payload_v2(response: ApiResponse) -> ApiGatewayV2httpResponse {
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(response.status);
    answer.headers = into_http(response.clone()).headers().clone();
    answer.body = Some(LambdaBody::Text(
        String::from_utf8_lossy(&response.body).into_owned(),
    ));
    answer.is_base64_encoded = false;
    answer.cookies = Vec::new();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::routes::Route;
    use crate::edge::tests::Echo;
    use serde_json::{Value, json};

    async fn invoke(event: Value) -> Value {
        let answer = handle_event(&Echo(&Route::ALL), &event.to_string(), Context::default()).await;
        serde_json::to_value(&answer).unwrap()
    }

    fn body(answer: &Value) -> Value {
        serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
    }

    fn http_api(method: &str, raw_path: &str, stage: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": "verify=wechat",
            "headers": {"authorization": "Bearer x", "host": "abc.execute-api.us-east-1.amazonaws.com"},
            "requestContext": {
                "domainName": "abc.execute-api.us-east-1.amazonaws.com",
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "x"},
                "requestId": "r", "routeKey": "$default", "stage": stage, "time": "", "timeEpoch": 0
            },
            "body": "eyJjb2RlIjoiYWJjIn0=",
            "isBase64Encoded": true
        })
    }

    fn rest(method: &str, path: &str) -> Value {
        json!({
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": method,
            "headers": {"Authorization": "Bearer x", "Host": "abc.execute-api.us-east-1.amazonaws.com"},
            "multiValueHeaders": {"Authorization": ["Bearer x"], "Host": ["abc.execute-api.us-east-1.amazonaws.com"]},
            "queryStringParameters": {"verify": "wechat"},
            "multiValueQueryStringParameters": {"verify": ["wechat"]},
            "requestContext": {"path": format!("/prod{path}"), "stage": "prod", "httpMethod": method, "requestId": "r", "resourcePath": "/{proxy+}", "accountId": "1", "apiId": "abc", "identity": {}},
            "body": "{\"code\":\"abc\"}",
            "isBase64Encoded": false
        })
    }

    fn alb(method: &str, path: &str) -> Value {
        json!({
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/1"}},
            "httpMethod": method,
            "path": path,
            "queryStringParameters": {"verify": "wechat"},
            "headers": {"authorization": "Bearer x", "host": "lb.us-east-2.elb.amazonaws.com", "x-forwarded-proto": "http"},
            "body": "{\"code\":\"abc\"}",
            "isBase64Encoded": false
        })
    }

    #[tokio::test]
    async fn every_source_reaches_the_same_route() {
        for event in [
            http_api("POST", "/login", "$default"),
            // A named stage: HTTP API puts it in rawPath, REST in requestContext.
            http_api("POST", "/prod/login", "prod"),
            rest("POST", "/login"),
            alb("POST", "/login"),
        ] {
            let answer = invoke(event.clone()).await;
            assert_eq!(answer["statusCode"], 200, "{event}\n{answer}");
            let echoed = body(&answer);
            assert_eq!(echoed["route"], "/login", "{answer}");
            assert_eq!(echoed["auth"], "Bearer x");
            assert_eq!(echoed["verify"], "wechat");
            assert_eq!(echoed["body"], r#"{"code":"abc"}"#);
        }
    }

    /// Behind a custom domain whose base path mapping is `v1`, API Gateway's REST
    /// events carry the base path in `path` (and `requestContext.path`); the
    /// resource it matched is the route.
    #[tokio::test]
    async fn rest_events_behind_a_base_path_mapping_reach_their_route() {
        let mut explicit = rest("POST", "/v1/login");
        explicit["resource"] = json!("/login");
        explicit["requestContext"]["resourcePath"] = json!("/login");
        explicit["requestContext"]["path"] = json!("/v1/login");
        explicit["requestContext"]["domainName"] = json!("api.example.cn");
        explicit["headers"]["Host"] = json!("api.example.cn");
        let mut greedy = rest("POST", "/v1/login");
        greedy["pathParameters"] = json!({"proxy": "login"});
        greedy["requestContext"]["path"] = json!("/v1/login");
        let mut nested = rest("POST", "/v1/auth/login");
        nested["resource"] = json!("/auth/{proxy+}");
        nested["requestContext"]["resourcePath"] = json!("/auth/{proxy+}");
        nested["pathParameters"] = json!({"proxy": "login"});
        for (event, route) in [
            (explicit, "/login"),
            (greedy, "/login"),
            (nested, "/auth/login"),
        ] {
            let answer = invoke(event.clone()).await;
            let echoed = body(&answer);
            if route == "/login" {
                assert_eq!(answer["statusCode"], 200, "{event}\n{answer}");
                assert_eq!(echoed["route"], "/login", "{answer}");
            } else {
                assert_eq!(answer["statusCode"], 404, "{event}\n{answer}");
                assert_eq!(echoed["error"], "not_found");
            }
        }
    }

    /// A Function URL's event: payload 2.0 from a `lambda-url` domain, as AWS
    /// documents it (`routeKey` and `stage` `$default`, no API id in the path).
    #[tokio::test]
    async fn function_url_events_are_served_as_payload_2() {
        let event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/session",
            "rawQueryString": "verify=wechat",
            "headers": {"authorization": "Bearer x", "host": "abcdefg.lambda-url.us-east-1.on.aws"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdefg",
                "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abcdefg",
                "http": {"method": "GET", "path": "/session", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "x"},
                "requestId": "r",
                "routeKey": "$default",
                "stage": "$default",
                "time": "24/Nov/2026:08:00:00 +0000",
                "timeEpoch": 1_795_334_400_000u64
            },
            "isBase64Encoded": false
        });
        let answer = invoke(event).await;
        assert_eq!(answer["statusCode"], 200, "{answer}");
        assert_eq!(answer["cookies"], json!([]));
        let echoed = body(&answer);
        assert_eq!(
            (echoed["route"].as_str(), echoed["verify"].as_str()),
            (Some("/session"), Some("wechat"))
        );
    }

    #[tokio::test]
    async fn answers_are_shaped_for_their_source() {
        let v2 = invoke(http_api("GET", "/nope", "$default")).await;
        assert_eq!(v2["statusCode"], 404);
        assert_eq!(v2["cookies"], json!([]), "{v2}");
        assert_eq!(v2["headers"]["content-type"], "application/json");
        assert_eq!(body(&v2)["error"], "not_found");

        let v1 = invoke(rest("PUT", "/session")).await;
        assert_eq!(v1["statusCode"], 405);
        assert_eq!(
            v1["multiValueHeaders"]["allow"],
            json!(["GET, POST, DELETE"]),
            "{v1}"
        );
        assert_eq!(body(&v1)["error"], "method_not_allowed");

        let lb = invoke(alb("POST", "/login")).await;
        assert_eq!(lb["statusDescription"], "200 OK", "{lb}");
    }

    #[tokio::test]
    async fn hostile_events_get_a_400_not_a_crash() {
        let mut bad_base64 = Vec::new();
        for mut event in [
            http_api("POST", "/login", "$default"),
            rest("POST", "/login"),
            alb("POST", "/login"),
        ] {
            event["body"] = json!("@@@ not base64");
            event["isBase64Encoded"] = json!(true);
            bad_base64.push(event);
        }
        let mut bad_host = http_api("POST", "/login", "$default");
        bad_host["headers"]["host"] = json!("exa mple.com:99999");
        let mut bad_scheme = alb("POST", "/login");
        bad_scheme["headers"]["x-forwarded-proto"] = json!("ht tp");
        let mut bad_path = rest("POST", ":99999");
        bad_path["headers"] = json!({});
        bad_path["multiValueHeaders"] = json!({});
        bad_path["requestContext"]["stage"] = Value::Null;
        let mut bad_alb_path = alb("POST", "@");
        bad_alb_path["headers"] = json!({});
        let mut bad_query = http_api("GET", "/session", "$default");
        bad_query["rawQueryString"] = json!("a=b c\"<>");
        for event in
            bad_base64
                .into_iter()
                .chain([bad_host, bad_scheme, bad_path, bad_alb_path, bad_query])
        {
            // Each of these would abort a process that handed it to lambda_http unchecked.
            let text = event.to_string();
            let converted = std::panic::catch_unwind(|| lambda_http::request::from_str(&text));
            assert!(converted.is_err(), "lambda_http accepts {event}");
            let answer = invoke(event.clone()).await;
            assert_eq!(answer["statusCode"], 400, "{event}\n{answer}");
            assert_eq!(body(&answer)["error"], "invalid_request", "{answer}");
        }
    }

    #[tokio::test]
    async fn odd_stage_names_are_only_unknown_paths() {
        let mut event = rest("POST", "/login");
        event["requestContext"]["stage"] = json!("a b:c@");
        let answer = invoke(event).await;
        assert_eq!(answer["statusCode"], 404, "{answer}");
    }

    #[tokio::test]
    async fn events_of_no_known_source_get_a_payload_2_answer() {
        for event in [
            json!([1, 2]),
            json!("text"),
            json!(null),
            json!({"not": "an event"}),
            json!({"headers": {"a": 1}}),
        ] {
            let answer = invoke(event.clone()).await;
            assert_eq!(answer["statusCode"], 400, "{event}");
            assert_eq!(answer["cookies"], json!([]));
            assert_eq!(body(&answer)["error"], "invalid_request");
        }
    }

    #[tokio::test]
    async fn body_size_is_counted_after_base64_decoding() {
        // 16384 bytes decoded is 21848 base64 characters: allowed through.
        let mut event = http_api("POST", "/login", "$default");
        event["body"] = json!(STANDARD.encode(vec![b'a'; MAX_BODY_BYTES]));
        let answer = invoke(event.clone()).await;
        assert_eq!(answer["statusCode"], 200);
        assert_eq!(
            body(&answer)["body"].as_str().unwrap().len(),
            MAX_BODY_BYTES
        );
        for size in [MAX_BODY_BYTES + 1, MAX_BODY_BYTES * 2] {
            event["body"] = json!(STANDARD.encode(vec![b'a'; size]));
            let answer = invoke(event.clone()).await;
            assert_eq!(answer["statusCode"], 413, "{size}");
            assert_eq!(body(&answer)["error"], "payload_too_large");
        }
    }
}
