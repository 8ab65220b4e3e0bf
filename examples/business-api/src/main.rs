//! A business API behind wxauth: `GET /orders` behind the wxauth Lambda
//! authorizer and `GET /profile` behind API Gateway's own JWT authorizer, both
//! answering for the user who calls. API Gateway runs the authorizer before
//! this function and hands it what it found: the Lambda authorizer's context
//! (`userId`, `openid`, `expiresAt`) in `requestContext.authorizer.lambda`, or
//! the JWT's verified claims (`sub`, `openid`, `exp`) in
//! `requestContext.authorizer.jwt.claims`; a request it refused never gets
//! here. The function never reads identity from a client-sent header.

use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::{Value, json};

/// The caller's openid, as the wxauth Lambda authorizer put it in the request
/// context or the JWT authorizer passed on from the token's claims, while the
/// session (or token) lasts. With a positive result-cache TTL API Gateway can
/// hand on a cached Allow after the session ended, so `expiresAt` (`exp` for a
/// JWT; epoch seconds) is checked against `now` as well.
pub fn caller_openid(request: &Request, now: i64) -> Option<String> {
    let RequestContext::ApiGatewayV2(context) = request.request_context_ref()? else {
        return None;
    };
    let authorizer = context.authorizer.as_ref()?;
    let (openid, expires_at) = match &authorizer.jwt {
        // API Gateway's JWT authorizer verified the signature, iss, aud and exp.
        Some(jwt) => (
            jwt.claims.get("openid")?.clone(),
            jwt.claims.get("exp")?.parse::<i64>().ok()?,
        ),
        None => (
            authorizer.fields.get("openid")?.as_str()?.to_owned(),
            authorizer.fields.get("expiresAt")?.as_i64()?,
        ),
    };
    (expires_at > now && !openid.is_empty()).then_some(openid)
}

fn epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /orders`: this user's orders (none here; look them up by openid).
async fn orders(request: Request) -> Result<Response<Body>, Error> {
    Ok(match caller_openid(&request, epoch_seconds()) {
        Some(openid) => json_response(StatusCode::OK, &json!({"openid": openid, "orders": []})),
        // Deployed without the authorizer, or a cached answer that outlived its session.
        None => json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "unauthorized", "message": "This route is served only behind the wxauth authorizer, to a live session: log in again with POST /login."}),
        ),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    run(service_fn(orders)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An HTTP API event as API Gateway sends it after the authorizer allowed.
    fn event(authorizer: Option<Value>) -> Request {
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "GET", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "MicroMessenger"},
            "requestId": "id",
            "routeKey": "GET /orders",
            "stage": "$default",
            "time": "24/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_334_400_000u64
        });
        if let Some(authorizer) = authorizer {
            context["authorizer"] = authorizer;
        }
        let event = json!({
            "version": "2.0",
            "routeKey": "GET /orders",
            "rawPath": "/orders",
            "rawQueryString": "",
            "headers": {"authorization": "Bearer forged-or-not", "x-openid": "oFORGED"},
            "requestContext": context,
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("an HTTP API event")
    }

    async fn call(request: Request) -> (u16, Value) {
        let response = orders(request).await.expect("an answer");
        let status = response.status().as_u16();
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).expect("JSON"),
            other => panic!("unexpected body {other:?}"),
        };
        (status, body)
    }

    #[tokio::test]
    async fn answers_for_the_caller_the_authorizer_identified() {
        let live = epoch_seconds() + 600;
        let context =
            json!({"lambda": {"openid": "oUSER123", "unionid": "uUNION", "expiresAt": live}});
        let (status, body) = call(event(Some(context))).await;
        assert_eq!(status, 200);
        assert_eq!(body["openid"], "oUSER123");
    }

    #[test]
    fn refuses_a_cached_answer_that_outlived_its_session() {
        let context = json!({"lambda": {"openid": "oUSER123", "expiresAt": 1_000}});
        let request = event(Some(context));
        assert_eq!(caller_openid(&request, 999).as_deref(), Some("oUSER123"));
        assert_eq!(caller_openid(&request, 1_000), None);
        let without = event(Some(json!({"lambda": {"openid": "oUSER123"}})));
        assert_eq!(caller_openid(&without, 0), None);
    }

    #[tokio::test]
    async fn answers_for_the_caller_of_a_verified_jwt() {
        let live = (epoch_seconds() + 600).to_string();
        let claims = json!({"jwt": {"claims": {"sub": "u_AAAAAAAAAAAAAAAAAAAAAA", "openid": "oJWT", "exp": live}, "scopes": null}});
        let (status, body) = call(event(Some(claims))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["openid"], "oJWT");
        let expired = json!({"jwt": {"claims": {"openid": "oJWT", "exp": "1000"}}});
        assert_eq!(caller_openid(&event(Some(expired)), 1_000), None);
    }

    #[tokio::test]
    async fn never_trusts_a_client_header_for_identity() {
        let (status, body) = call(event(None)).await;
        assert_eq!(status, 401, "{body}");
        let (status, _) = call(event(Some(json!({"lambda": {}})))).await;
        assert_eq!(status, 401);
    }
}
