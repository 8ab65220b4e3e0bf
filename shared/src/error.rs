//! The one error type of the HTTP API, and the one place it becomes a response.

use serde::Serialize;
use tracing::warn;

use crate::api::ApiResponse;
use crate::wechat::WeChatError;

/// Retry-After for 503: the SDK and our own retries already spent the quick
/// chances, so ask for a short pause rather than an instant hammer.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 2;
/// Retry-After for 429: WeChat's 45011 limit is counted per minute.
pub const RETRY_AFTER_RATE_LIMITED_SECS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the message says which field and why.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid code")]
    InvalidCode,
    /// 401: the message says whether the token was missing, malformed or unknown.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("signature mismatch")]
    SignatureMismatch,
    #[error("session_key invalid")]
    SessionKeyInvalid,
    #[error("login blocked")]
    LoginBlocked,
    /// 404: no route at this path.
    #[error("not found")]
    NotFound,
    /// 405, with the methods the route does serve.
    #[error("method not allowed")]
    MethodNotAllowed { allowed: &'static str },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("decrypt failed")]
    DecryptFailed,
    #[error("rate limited")]
    RateLimited,
    /// 502: the errcode when there was one.
    #[error("wechat error")]
    WeChat { errcode: Option<i64> },
    /// 503: names the service, never its error text.
    #[error("{0} unavailable")]
    Unavailable(Upstream),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    WeChat,
    SessionTable,
    SecretStore,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WeChat => "WeChat",
            Self::SessionTable => "the session table",
            Self::SecretStore => "the secret store",
        })
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) => 400,
            Self::InvalidCode
            | Self::Unauthorized(_)
            | Self::SignatureMismatch
            | Self::SessionKeyInvalid => 401,
            Self::LoginBlocked => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::PayloadTooLarge => 413,
            Self::DecryptFailed => 422,
            Self::RateLimited => 429,
            Self::WeChat { .. } => 502,
            Self::Unavailable(_) => 503,
        }
    }

    /// The contract's `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCode => "invalid_code",
            Self::Unauthorized(_) => "unauthorized",
            Self::SignatureMismatch => "signature_mismatch",
            Self::SessionKeyInvalid => "session_key_invalid",
            Self::LoginBlocked => "login_blocked",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::DecryptFailed => "decrypt_failed",
            Self::RateLimited => "rate_limited",
            Self::WeChat { .. } => "wechat_error",
            Self::Unavailable(_) => "upstream_unavailable",
        }
    }

    /// One sentence a developer can act on.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidRequest(message) => message.clone(),
            Self::InvalidCode => "WeChat refused the login code: it is invalid or was already used. Call wx.login again and send the new code.".into(),
            Self::Unauthorized(reason) => (*reason).into(),
            Self::SignatureMismatch => "The rawData signature does not match this session's session_key, which a later wx.login may have refreshed: log in again and fetch the user info anew.".into(),
            Self::SessionKeyInvalid => "WeChat no longer holds this session's session_key: log in again with wx.login.".into(),
            Self::LoginBlocked => "WeChat refused this login because it judged the user high-risk (errcode 40226).".into(),
            Self::NotFound => "No route serves this path: the API serves POST /login, POST /phone, POST /open-data and GET, POST, DELETE /session.".into(),
            Self::MethodNotAllowed { allowed } => format!("This route serves only {allowed}."),
            Self::PayloadTooLarge => "The request body is over 16384 bytes.".into(),
            Self::DecryptFailed => "The data could not be decrypted with this session's session_key, which a later wx.login may have refreshed: log in again, then request the data anew.".into(),
            Self::RateLimited => "WeChat rate-limited this request (errcode 45011): retry after the Retry-After delay.".into(),
            Self::WeChat { errcode: Some(errcode) } => format!("WeChat answered errcode {errcode}, which this server does not handle: check the app's configuration, or retry later."),
            Self::WeChat { errcode: None } => "WeChat answered something that is not a usable reply: retry later.".into(),
            Self::Unavailable(upstream) => format!("{upstream} is unavailable or did not answer in time: retry after the Retry-After delay."),
        }
    }

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

/// What each WeChat failure means to the client.
pub fn wechat_failure(err: WeChatError) -> ApiError {
    match err {
        WeChatError::InvalidCode(_) => ApiError::InvalidCode,
        WeChatError::Blocked => ApiError::LoginBlocked,
        WeChatError::RateLimited => ApiError::RateLimited,
        WeChatError::Busy | WeChatError::Transport(_) | WeChatError::Timeout => {
            warn!(error = %err, "WeChat unavailable after retries");
            ApiError::Unavailable(Upstream::WeChat)
        }
        WeChatError::BadCredential(errcode)
        | WeChatError::TokenRejected(errcode)
        | WeChatError::Other(errcode) => {
            warn!(errcode, "WeChat answered an errcode we cannot handle");
            ApiError::WeChat {
                errcode: Some(errcode),
            }
        }
        WeChatError::Malformed(reason) => {
            warn!(reason, "WeChat answered something unusable");
            ApiError::WeChat { errcode: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
