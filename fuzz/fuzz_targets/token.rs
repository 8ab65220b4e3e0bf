//! Token parsing: arbitrary text as a token and as an Authorization header.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wxauth::edge::request::ApiRequest;
use wxauth::edge::authenticate::bearer_token;
use wxauth::runtime::deadline::Deadline;
use wxauth::domain::token::SessionToken;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = SessionToken::parse(text) {
        assert_eq!(token.expose(), text);
        assert_eq!(token.key().as_str().len(), 64);
    }
    let request = ApiRequest::new("GET", "/session", Deadline::after(Duration::from_secs(1)))
        .with_header("authorization", text);
    let _ = bearer_token(&request);
});
