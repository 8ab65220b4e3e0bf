//! A request and its answer as the handlers see them, whatever carried them
//! (Lambda, the local server), and every error's answer in the contract's
//! shape.

use std::fmt;

use serde::Serialize;

use crate::domain::login_log::Origin;
use crate::domain::session::Caller;
use crate::edge::error::{ApiError, RETRY_AFTER_RATE_LIMITED_SECS, RETRY_AFTER_UNAVAILABLE_SECS};
use crate::runtime::deadline::Deadline;

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
