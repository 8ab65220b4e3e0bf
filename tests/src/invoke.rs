//! Driving handlers in-process through the functions' own Lambda edge.

use serde_json::{Value, json};
use wxauth::edge::lambda::handle_event;
use wxauth::edge::routes::Handler;

use crate::events::HttpEvent;
use crate::world::World;
use wechat_sim::Issued;

/// A handler's answer as API Gateway would get it.
pub struct Answer {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
    /// The whole serialized response, for leak scans.
    pub raw: String,
}

pub async fn call(handler: &impl Handler, event: HttpEvent) -> Answer {
    call_with_deadline(handler, event, None).await
}

pub async fn call_with_deadline(
    handler: &impl Handler,
    event: HttpEvent,
    deadline_ms: Option<u64>,
) -> Answer {
    invoke_event(handler, &event.build(), deadline_ms).await
}

/// Any event, as the Lambda runtime would hand it over.
pub async fn invoke_event(
    handler: &impl Handler,
    event: &Value,
    deadline_ms: Option<u64>,
) -> Answer {
    let mut context = wxauth::edge::lambda::Context::default();
    context.deadline = deadline_ms.unwrap_or(0);
    let response = handle_event(handler, &event.to_string(), context).await;
    let raw = serde_json::to_string(&response).unwrap();
    let response: Value = serde_json::from_str(&raw).unwrap();
    Answer {
        status: response["statusCode"].as_u64().unwrap() as u16,
        headers: response["headers"].clone(),
        body: response["body"]
            .as_str()
            .and_then(|body| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null),
        raw,
    }
}

pub fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (status, Some(code)),
        "{}",
        answer.raw
    );
    assert!(
        answer.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(answer.body.as_object().unwrap().len(), 2, "{}", answer.raw);
}

/// Sends `event` to `handler` and asserts the contract's error answer.
pub async fn expect_error(
    handler: &impl Handler,
    event: HttpEvent,
    status: u16,
    code: &str,
) -> Answer {
    let answer = call(handler, event).await;
    assert_error(&answer, status, code);
    answer
}

pub fn login_event(code: &str) -> HttpEvent {
    HttpEvent::new("POST", "/login").json(&json!({"code": code}))
}

/// `POST /login` of a code from the app `appid`.
pub fn login_event_in(appid: &str, code: &str) -> HttpEvent {
    HttpEvent::new("POST", "/login").json(&json!({"code": code, "appid": appid}))
}

pub async fn logged_in(world: &World, login: &impl Handler) -> (String, Issued) {
    let (code, issued) = world.wechat.issue_code();
    let answer = call(login, login_event(&code)).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    (answer.body["token"].as_str().unwrap().to_owned(), issued)
}
