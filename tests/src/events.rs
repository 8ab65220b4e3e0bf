//! API Gateway HTTP API (payload format 2.0) events, shaped as the service sends them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub struct HttpEvent {
    method: String,
    path: String,
    query: String,
    headers: serde_json::Map<String, Value>,
    body: Option<Vec<u8>>,
    base64: bool,
}

impl HttpEvent {
    pub fn new(method: &str, path: &str) -> Self {
        let mut headers = serde_json::Map::new();
        headers.insert(
            "host".into(),
            json!("abc123.execute-api.us-east-1.amazonaws.com"),
        );
        headers.insert(
            "user-agent".into(),
            json!("Mozilla/5.0 MicroMessenger/8.0.50"),
        );
        headers.insert("x-forwarded-for".into(), json!("203.0.113.7"));
        Self {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers,
            body: None,
            base64: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), json!(value));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn query(mut self, query: &str) -> Self {
        self.query = query.into();
        self
    }

    pub fn json(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .raw_body(body.to_string())
    }

    pub fn raw_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// As API Gateway delivers bodies it considers binary.
    pub fn base64_body(mut self) -> Self {
        self.base64 = true;
        self
    }

    pub fn build(self) -> Value {
        let body = self.body.map(|b| {
            if self.base64 {
                STANDARD.encode(&b)
            } else {
                String::from_utf8_lossy(&b).into_owned()
            }
        });
        let mut event = json!({
            "version": "2.0",
            "routeKey": format!("ANY {}", self.path),
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": self.headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.7",
                    "userAgent": "Mozilla/5.0 MicroMessenger/8.0.50"
                },
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": format!("ANY {}", self.path),
                "stage": "$default",
                "time": "22/Nov/2026:08:00:00 +0000",
                "timeEpoch": 1795334400000u64
            },
            "isBase64Encoded": self.base64
        });
        if let Some(body) = body {
            event["body"] = json!(body);
        }
        event
    }
}

/// The route ARN the authorizer events below are for.
pub const AUTHORIZED_ROUTE_ARN: &str =
    "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/orders";
/// What a REST authorizer's policy allows for that route: the whole stage,
/// since API Gateway caches one answer per token for every method and path.
pub const AUTHORIZED_STAGE_ARN: &str =
    "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/*/*";

/// What an HTTP API sends its Lambda authorizer (payload 2.0, identity source
/// the Authorization header) for `GET /orders`, with that header's value when
/// the client sent one.
pub fn authorizer_event(authorization: Option<&str>) -> Value {
    let mut event = json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": AUTHORIZED_ROUTE_ARN,
        "routeKey": "GET /orders",
        "rawPath": "/orders",
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "GET", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "MicroMessenger"},
            "requestId": "id",
            "routeKey": "GET /orders",
            "stage": "$default",
            "time": "24/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_334_400_000u64
        }
    });
    if let Some(value) = authorization {
        event["identitySource"] = json!([value]);
        event["headers"]["authorization"] = json!(value);
    }
    event
}
