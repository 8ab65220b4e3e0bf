//! Lambda events through the edge, as the runtime hands them over: arbitrary
//! text as the payload, and each of the four HTTP sources (HTTP API payload 2.0,
//! Function URL, REST API payload 1.0, ALB) with fuzzed method, path, stage,
//! Host, X-Forwarded-Proto, query, body and base64 flag: the fields lambda_http's
//! conversion would panic on. Any panic or abort, or an answer outside 2xx-4xx,
//! is a finding.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wxauth::edge::lambda::{Context, handle_event};
use wxauth::handlers::CheckSession;
use wxauth::ports::memory::MemorySessionStore;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
});
static CHECK: LazyLock<CheckSession<Arc<MemorySessionStore>>> =
    LazyLock::new(|| CheckSession::new(Arc::new(MemorySessionStore::new())));

fn answer(event: &str) -> Value {
    let response = RUNTIME.block_on(handle_event(&*CHECK, event, Context::default()));
    let response = serde_json::to_value(&response).expect("the answer serializes");
    let status = response["statusCode"].as_u64().expect("statusCode");
    assert!((200..500).contains(&status), "status {status} for {event}");
    response
}

/// One of the four sources, its fields cut from the input at 0xFF bytes.
fn shaped(data: &[u8]) -> Option<Value> {
    let (&kind, rest) = data.split_first()?;
    let mut fields = rest.split(|b| *b == 0xFF).map(|f| String::from_utf8_lossy(f).into_owned());
    let mut next = || fields.next().unwrap_or_default();
    let (method, path, stage, host, proto, query, body) =
        (next(), next(), next(), next(), next(), next(), next());
    let base64 = kind & 0x80 != 0;
    let headers = json!({"host": host, "x-forwarded-proto": proto, "authorization": "Bearer x"});
    Some(match kind % 4 {
        0 | 1 => json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                // A Function URL is payload 2.0 from a lambda-url domain.
                "domainName": if kind % 4 == 1 { "abc.lambda-url.us-east-1.on.aws" } else { "abc.execute-api.us-east-1.amazonaws.com" },
                "http": {"method": method, "path": path},
                "stage": stage,
            },
            "body": body,
            "isBase64Encoded": base64,
        }),
        2 => json!({
            "resource": "/{proxy+}",
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {"host": [host]},
            "queryStringParameters": {"q": query},
            "requestContext": {"stage": stage, "domainName": host},
            "body": body,
            "isBase64Encoded": base64,
        }),
        _ => json!({
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/t/1"}},
            "httpMethod": method,
            "path": path,
            "queryStringParameters": {"q": query},
            "headers": headers,
            "body": body,
            "isBase64Encoded": base64,
        }),
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        answer(text);
    }
    if let Some(event) = shaped(data) {
        answer(&event.to_string());
    }
});
