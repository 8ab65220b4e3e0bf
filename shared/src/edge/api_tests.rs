//! The edge's request, body, token and error checks.

use crate::domain::token::Bearer;
use crate::domain::token::SessionToken;
use crate::edge::authenticate::*;
use crate::edge::body::FORM_ENCODED;
use crate::edge::body::*;
use crate::edge::error::ApiError;
use crate::edge::request::*;
use crate::edge::routes::*;
use crate::ports::errors::Upstream;
use crate::runtime::deadline::Deadline;
use std::time::Duration;

fn request(method: &str) -> ApiRequest {
    ApiRequest::new(method, "/x", Deadline::after(Duration::from_secs(1)))
}

#[test]
fn methods_are_matched_exactly() {
    assert!(check_method("GET", "GET, POST").is_ok());
    assert!(check_method("POST", "GET, POST").is_ok());
    assert!(check_method("DELETE", "GET, POST").is_err());
    assert!(check_method("GE", "GET, POST").is_err());
    assert!(check_method("get", "GET, POST").is_err());
}

#[test]
fn the_route_table() {
    for route in Route::ALL {
        assert_eq!(Route::at(route.path()), Some(route));
    }
    assert_eq!(Route::at("/session/"), None);
    assert_eq!(Route::at("/prod/login"), None);
    assert_eq!(Route::at("/"), None);
}

#[test]
fn bearer_token_shapes() {
    let token = SessionToken::generate().unwrap();
    let t = token.expose();
    for header in [
        format!("Bearer {t}"),
        format!("bearer {t}"),
        format!("BEARER  {t} "),
    ] {
        let got = bearer_token(&request("GET").with_header("Authorization", header.clone()));
        assert_eq!(
            got.as_ref().ok(),
            Some(&Bearer::Opaque(token.clone())),
            "{header}"
        );
    }
    assert_eq!(
        bearer_token(&request("GET")),
        Err(ApiError::Unauthorized(NO_TOKEN))
    );
    for header in [
        t.to_owned(),
        format!("Basic {t}"),
        "Bearer abc".into(),
        format!("Bearer {t}x"),
    ] {
        assert_eq!(
            bearer_token(&request("GET").with_header("authorization", header)),
            Err(ApiError::Unauthorized(MALFORMED_TOKEN))
        );
    }
}

#[test]
fn token_in_query_string_is_ignored() {
    let token = SessionToken::generate().unwrap();
    let mut req = request("GET");
    req.query = Some(format!(
        "token={}&access_token={}",
        token.expose(),
        token.expose()
    ));
    assert_eq!(bearer_token(&req), Err(ApiError::Unauthorized(NO_TOKEN)));
}

#[test]
fn json_body_field_errors() {
    for body in [&b""[..], b"null", b"[]", b"\"x\"", b"{", b"\xff"] {
        assert!(JsonBody::parse(body).is_err());
    }
    let body = JsonBody::parse(br#"{"a":"","b":1,"c":"x","n":null}"#).unwrap();
    assert_eq!(body.required_str("a"), Err(invalid("a is empty.".into())));
    assert_eq!(
        body.required_str("b"),
        Err(invalid("b must be a string.".into()))
    );
    assert_eq!(body.required_str("n"), Err(invalid("n is missing.".into())));
    assert_eq!(body.required_str("z"), Err(invalid("z is missing.".into())));
    assert_eq!(body.required_str("c"), Ok("x"));
}

#[test]
fn a_form_encoded_body_is_named_as_such() {
    let with = |body: &str, content_type: Option<&str>| {
        let mut req = request("POST");
        req.body = body.as_bytes().to_vec();
        if let Some(value) = content_type {
            req = req.with_header("content-type", value);
        }
        JsonBody::from_request(&req).map(|_| ())
    };
    let form = Err(invalid(FORM_ENCODED.into()));
    let not_json = Err(invalid("The request body must be a JSON object.".into()));
    // By its shape, whatever the label.
    assert_eq!(with("code=0a1b2c", None), form);
    assert_eq!(
        with("encryptedData=AbC%2B&iv=r7BX", Some("text/plain")),
        form
    );
    assert_eq!(with("refreshToken=x&", None), not_json);
    // By its label, whatever the shape.
    let label = Some("application/x-www-form-urlencoded; charset=UTF-8");
    assert_eq!(with("{broken", label), form);
    // JSON is read whatever its label; other non-JSON is just not JSON.
    assert_eq!(with(r#"{"code":"x"}"#, label), Ok(()));
    for body in ["", "hello", "{\"code\": 1", "a = b", "=x", "[1]"] {
        assert_eq!(with(body, None), not_json, "{body}");
    }
}

#[test]
fn base64_field_explains_a_space() {
    let body = JsonBody::parse(br#"{"iv":"r7BX XKkLb8qrSNn05n0qiA==","long":"AAAAAAAA"}"#).unwrap();
    let err = body.base64_field("iv", 100).unwrap_err();
    assert!(err.message().contains("'+'"), "{}", err.message());
    assert_eq!(err.status(), 400);
    assert!(
        body.base64_field("long", 7)
            .unwrap_err()
            .message()
            .contains("longer than 7")
    );
    assert_eq!(body.base64_field("long", 8).unwrap(), vec![0; 6]);
}

#[test]
fn query_params_are_percent_decoded() {
    let mut req = request("GET");
    req.query = Some("verify=wechat&x&v%65rify2=we%63hat&s=a+b%2Bc&d=1&d=2".into());
    assert_eq!(req.query_param("verify").as_deref(), Some("wechat"));
    assert_eq!(req.query_param("verify2").as_deref(), Some("wechat"));
    assert_eq!(req.query_param("x").as_deref(), Some(""));
    assert_eq!(req.query_param("s").as_deref(), Some("a b+c"));
    assert_eq!(req.query_param("d").as_deref(), Some("2"));
    assert_eq!(req.query_param("y"), None);
}

#[test]
fn debug_hides_headers_and_body() {
    let req = request("POST")
        .with_bearer("SECRET-TOKEN")
        .with_body("{\"encryptedData\":\"CIPHER\"}");
    let shown = format!("{req:?}");
    assert!(
        !shown.contains("SECRET-TOKEN") && !shown.contains("CIPHER"),
        "{shown}"
    );
}

#[test]
fn every_error_has_the_contract_shape() {
    let all = [
        ApiError::InvalidRequest("code is missing.".into()),
        ApiError::InvalidCode,
        ApiError::Unauthorized("No token."),
        ApiError::SignatureMismatch,
        ApiError::SessionKeyInvalid,
        ApiError::LoginBlocked,
        ApiError::NotFound,
        ApiError::MethodNotAllowed { allowed: "POST" },
        ApiError::PayloadTooLarge,
        ApiError::DecryptFailed,
        ApiError::RateLimited,
        ApiError::WeChat {
            errcode: Some(40013),
        },
        ApiError::WeChat { errcode: None },
        ApiError::Unavailable(Upstream::SessionTable),
    ];
    for err in all {
        let status = err.status();
        let code = err.code();
        let response = err.into_response();
        assert_eq!(response.status, status);
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 2, "{body}");
        assert_eq!(object["error"], code);
        assert!(!object["message"].as_str().unwrap().is_empty());
        assert_eq!(response.header("content-type"), Some("application/json"));
    }
}

#[test]
fn retry_after_on_429_and_503_allow_on_405() {
    assert_eq!(
        ApiError::RateLimited.into_response().header("retry-after"),
        Some("60")
    );
    assert_eq!(
        ApiError::Unavailable(Upstream::WeChat)
            .into_response()
            .header("retry-after"),
        Some("2")
    );
    assert_eq!(
        ApiError::MethodNotAllowed {
            allowed: "GET, POST"
        }
        .into_response()
        .header("allow"),
        Some("GET, POST")
    );
    assert_eq!(
        ApiError::DecryptFailed
            .into_response()
            .header("retry-after"),
        None
    );
}
