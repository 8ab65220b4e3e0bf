//! The token of a request, and the live session it names.

use crate::domain::session::Session;
use crate::domain::token::{Bearer, BearerError, TokenKey};
use crate::edge::error::ApiError;
use crate::edge::request::ApiRequest;
use crate::ports::errors::Upstream;
use crate::ports::keys::PublicKeyStore;
use crate::ports::sessions::SessionStore;
use crate::services::access::{Refused, TokenCheck};
use crate::services::sessions::live_session;

pub(crate) const NO_TOKEN: &str = "No session token was sent: log in with POST /login and send the token as Authorization: Bearer <token>.";
pub(crate) const MALFORMED_TOKEN: &str = "The Authorization header is not Bearer followed by a token that POST /login issued: log in again.";
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

const UNLISTED_APP: &str = "The session belongs to an app this server no longer serves (WECHAT_APPS): log in again through one it serves.";

/// The live session behind the request's bearer token (opaque or JWT), and
/// its table key. Where the function lists its apps, the session's app is
/// filled in (one from before several apps is the default app's) and a
/// session of an app no longer listed is refused.
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
    let mut session = match live_session(store, &target.key, request.deadline).await? {
        Some(session)
            if target
                .expected_user
                .as_ref()
                .is_none_or(|user| *user == session.user_id) =>
        {
            session
        }
        _ => return Err(ApiError::Unauthorized(UNKNOWN_SESSION)),
    };
    match tokens.app_of(session.appid.as_ref()) {
        Ok(Some(app)) => session.appid = Some(app.id.clone()),
        Ok(None) => {}
        Err(_) => return Err(ApiError::Unauthorized(UNLISTED_APP)),
    }
    Ok((target.key, session))
}

/// `unsupported_for_app` unless the session is a mini-program's: the routes
/// that need a session_key or a mini-program openid. Where the function
/// lists no apps, every session is taken to be one.
pub fn require_mini_program(tokens: &TokenCheck, session: &Session) -> Result<(), ApiError> {
    match tokens.app_of(session.appid.as_ref()) {
        Ok(Some(app)) if !app.is_mini_program() => Err(ApiError::UnsupportedForApp),
        _ => Ok(()),
    }
}
