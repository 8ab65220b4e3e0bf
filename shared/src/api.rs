//! The HTTP API in plain Rust: requests, responses and the checks every route
//! shares, in the contract's order (size, method, token, fields).

use std::fmt;
use std::future::Future;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::access::{Refused, TokenCheck};
use crate::crypto::{Base64Error, decode_base64};
use crate::deadline::Deadline;
use crate::error::Upstream;
use crate::error::{ApiError, RETRY_AFTER_RATE_LIMITED_SECS, RETRY_AFTER_UNAVAILABLE_SECS};
use crate::jwt::PublicKeyStore;
use crate::login_log::Origin;
use crate::session::{Caller, Session, SessionStore, live_session};
use crate::token::{Bearer, BearerError, TokenKey};

/// Bodies over this many bytes (after base64 decoding) are refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request as the handlers see it, whatever carried it (Lambda, the local server).
#[derive(Clone)]
pub struct ApiRequest {
    /// Upper case, e.g. `POST`.
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub deadline: Deadline,
    /// Who API Gateway's authorizer said is calling (its context in the event's
    /// `requestContext.authorizer`). Never read from anything the client sends.
    pub caller: Option<Caller>,
    /// Where the request came from (the login log).
    pub origin: Origin,
}

impl ApiRequest {
    pub fn new(method: &str, path: &str, deadline: Deadline) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: None,
            headers: Vec::new(),
            body: Vec::new(),
            deadline,
            caller: None,
            origin: Origin::default(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_bearer(self, token: &str) -> Self {
        self.with_header("authorization", format!("Bearer {token}"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a query parameter, percent-decoded (`a%3Db` is `a=b`,
    /// `+` a space), as every HTTP stack decodes a query string.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_deref()?.as_bytes())
            .filter(|(n, _)| n == name)
            .last()
            .map(|(_, v)| v.into_owned())
    }
}

/// Headers and body may hold the token and ciphertexts: show neither.
impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The contract's error code, for the request log line.
    pub error: Option<&'static str>,
}

impl ApiResponse {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        // Our bodies are plain structs and maps: serialization cannot fail.
        let body = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body,
            error: None,
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
            error: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

/// Every error's answer: `{"error", "message"}`, with `Retry-After` on 429 and
/// 503 and `Allow` on 405.
impl ApiError {
    pub fn into_response(self) -> ApiResponse {
        let message = self.message();
        let body = ErrorBody {
            error: self.code(),
            message: &message,
        };
        let mut response = ApiResponse::json(self.status(), &body);
        response.error = Some(self.code());
        match self {
            Self::RateLimited => {
                response =
                    response.with_header("retry-after", RETRY_AFTER_RATE_LIMITED_SECS.to_string());
            }
            Self::Unavailable(_) => {
                response =
                    response.with_header("retry-after", RETRY_AFTER_UNAVAILABLE_SECS.to_string());
            }
            Self::MethodNotAllowed { allowed } => {
                response = response.with_header("allow", allowed.to_owned());
            }
            _ => {}
        }
        response
    }
}

impl From<ApiError> for ApiResponse {
    fn from(err: ApiError) -> Self {
        err.into_response()
    }
}

/// The route table: every path the API serves and the methods it serves there.
/// The edge (`crate::edge`) routes by it for Lambda and the local server alike;
/// `template.yaml` and `docs/openapi.yaml` list the same routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Login,
    Phone,
    OpenData,
    Session,
    /// The caller's account: read it or delete it.
    Account,
    /// The sample route behind the authorizer: who is calling.
    Me,
    /// A new session from a refresh token, without WeChat.
    Refresh,
    Jwks,
    OpenIdConfiguration,
}

impl Route {
    pub const ALL: [Route; 9] = [
        Route::Login,
        Route::Phone,
        Route::OpenData,
        Route::Session,
        Route::Account,
        Route::Me,
        Route::Refresh,
        Route::Jwks,
        Route::OpenIdConfiguration,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::Login => "/login",
            Self::Phone => "/phone",
            Self::OpenData => "/open-data",
            Self::Session => "/session",
            Self::Account => "/account",
            Self::Me => "/me",
            Self::Refresh => "/refresh",
            Self::Jwks => "/.well-known/jwks.json",
            Self::OpenIdConfiguration => "/.well-known/openid-configuration",
        }
    }

    /// The methods served, as the `Allow` header lists them.
    pub fn methods(self) -> &'static str {
        match self {
            Self::Login | Self::Phone | Self::OpenData | Self::Refresh => "POST",
            Self::Session => "GET, POST, DELETE",
            Self::Account => "GET, DELETE",
            Self::Me | Self::Jwks | Self::OpenIdConfiguration => "GET",
        }
    }

    /// The route at `path` (no stage prefix, no trailing slash).
    pub fn at(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|route| route.path() == path)
    }
}

/// One function's part of the API. The edge has already checked the body size
/// and the method against the route table when `handle` runs.
pub trait Handler: Send + Sync + 'static {
    /// Whether this function serves `route`; the others answer 404 here.
    fn serves(&self, route: Route) -> bool;

    fn handle(&self, route: Route, request: ApiRequest)
    -> impl Future<Output = ApiResponse> + Send;
}

/// `allowed` is the contract's list, e.g. `"GET, POST"`.
pub fn check_method(method: &str, allowed: &'static str) -> Result<(), ApiError> {
    if allowed.split(", ").any(|m| m == method) {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed { allowed })
    }
}

const NO_TOKEN: &str = "No session token was sent: log in with POST /login and send the token as Authorization: Bearer <token>.";
const MALFORMED_TOKEN: &str = "The Authorization header is not Bearer followed by a token that POST /login issued: log in again.";
const UNKNOWN_SESSION: &str =
    "The session is unknown or has expired: call wx.login and POST /login again.";

const REFUSED_JWT: &str = "The JWT is not one this API issued and still accepts (signature, key, issuer, audience or expiry): call wx.login and POST /login again.";

/// The token from `Authorization: Bearer <token>`. Never from the query string:
/// URLs end up in access logs and browser history.
pub fn bearer_token(request: &ApiRequest) -> Result<Bearer, ApiError> {
    Bearer::from_header(request.header("authorization")).map_err(|err| match err {
        BearerError::Missing => ApiError::Unauthorized(NO_TOKEN),
        BearerError::Malformed => ApiError::Unauthorized(MALFORMED_TOKEN),
    })
}

/// The live session behind the request's bearer token (opaque or JWT), and
/// its table key.
pub async fn authenticate<S: SessionStore + PublicKeyStore>(
    store: &S,
    tokens: &TokenCheck,
    request: &ApiRequest,
) -> Result<(TokenKey, Session), ApiError> {
    let bearer = bearer_token(request)?;
    let target = match request
        .deadline
        .run(tokens.session_ref(store, &bearer))
        .await
    {
        Some(Ok(target)) => target,
        Some(Err(Refused::Jwt(_))) => return Err(ApiError::Unauthorized(REFUSED_JWT)),
        Some(Err(Refused::Unavailable)) | None => {
            return Err(ApiError::Unavailable(Upstream::SessionTable));
        }
    };
    match live_session(store, &target.key, request.deadline).await? {
        Some(session)
            if target
                .expected_user
                .as_ref()
                .is_none_or(|user| *user == session.user_id) =>
        {
            Ok((target.key, session))
        }
        _ => Err(ApiError::Unauthorized(UNKNOWN_SESSION)),
    }
}

/// A request body that is a JSON object.
#[derive(Debug)]
pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    /// Any Content-Type: mini-program clients and proxies label bodies loosely.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(object)) => Ok(Self(object)),
            _ => Err(ApiError::InvalidRequest(
                "The request body must be a JSON object.".into(),
            )),
        }
    }

    /// The request's body as a JSON object. A body that is not JSON but is
    /// form-encoded, by its Content-Type or by its `k=v&…` shape, is named as
    /// such: `wx.request` with a form content-type is the usual cause. A JSON
    /// body is read whatever its label.
    pub fn from_request(request: &ApiRequest) -> Result<Self, ApiError> {
        Self::parse(&request.body).map_err(|err| {
            let labelled = request.header("content-type").is_some_and(|value| {
                value
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
            if labelled || looks_form_encoded(&request.body) {
                invalid(FORM_ENCODED.into())
            } else {
                err
            }
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A field, whatever its type; `None` when absent or null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// A present, non-empty string field.
    pub fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(invalid(format!("{name} is missing."))),
            Some(Value::String(s)) if s.is_empty() => Err(invalid(format!("{name} is empty."))),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(invalid(format!("{name} must be a string."))),
        }
    }

    /// A required base64 field of at most `max_chars` characters, decoded.
    pub fn base64_field(&self, name: &str, max_chars: usize) -> Result<Vec<u8>, ApiError> {
        let text = self.required_str(name)?;
        if text.chars().count() > max_chars {
            return Err(invalid(format!(
                "{name} is longer than {max_chars} characters."
            )));
        }
        decode_base64(text).map_err(|err| match err {
            Base64Error::SpaceInside => invalid(format!(
                "{name} contains a space: a '+' was probably form-encoded into a space on the way; send the body as JSON, or encode '+' as %2B."
            )),
            Base64Error::Invalid => invalid(format!("{name} is not valid base64.")),
        })
    }
}

const FORM_ENCODED: &str = "The request body is form-encoded (application/x-www-form-urlencoded), and this API takes JSON: send a JSON object with content-type: application/json (wx.request with an object as data).";

/// `key=value` pairs joined by `&`, with nothing a JSON document starts with.
fn looks_form_encoded(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let text = text.trim();
    !text.is_empty()
        && !text.starts_with(['{', '[', '"'])
        && !text.contains(char::is_whitespace)
        && text.split('&').all(|pair| {
            pair.split_once('=').is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.%[]".contains(c))
            })
        })
}

pub fn invalid(message: String) -> ApiError {
    ApiError::InvalidRequest(message)
}

/// A code from wx.login or the getPhoneNumber button is at most this long;
/// WeChat's are 32 (login) or 64 (phone) characters.
pub const MAX_CODE_CHARS: usize = 128;

/// The `code` field: 1 to 128 visible ASCII characters.
pub fn code_field(body: &JsonBody) -> Result<&str, ApiError> {
    let code = body.required_str("code")?;
    if code.len() > MAX_CODE_CHARS || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "code must be 1 to {MAX_CODE_CHARS} visible ASCII characters, as WeChat hands it to the mini-program."
        )));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SessionToken;
    use crate::upstream::Upstream;
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
        let body =
            JsonBody::parse(br#"{"iv":"r7BX XKkLb8qrSNn05n0qiA==","long":"AAAAAAAA"}"#).unwrap();
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
}
