//! `GET /me`: the sample route behind the authorizer.

use serde::Serialize;

use crate::domain::account::UserId;
use crate::domain::app::AppId;
use crate::domain::time::epoch_seconds;
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};

const NO_AUTHORIZER: &str = "GET /me is served only behind the wxauth authorizer, which identifies the caller from its Bearer token: log in with POST /login and send the token.";

const CONTEXT_EXPIRED: &str = "The session behind this request has expired (API Gateway answered from its authorizer cache): log in again with POST /login.";

/// `GET /me`: the caller the authorizer identified (app, openid, unionid), from the
/// event's authorizer context; the route has no other way to know who calls.
/// API Gateway may answer from a cached Allow after the session ended, so the
/// context's `expiresAt` is checked here too.
pub(super) fn me(request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let caller = request
        .caller
        .as_ref()
        .ok_or(ApiError::Unauthorized(NO_AUTHORIZER))?;
    if caller.expires_at <= epoch_seconds() {
        return Err(ApiError::Unauthorized(CONTEXT_EXPIRED));
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct MeBody<'a> {
        user_id: &'a UserId,
        #[serde(skip_serializing_if = "Option::is_none")]
        appid: Option<&'a AppId>,
        openid: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        unionid: Option<&'a str>,
    }
    Ok(ApiResponse::json(
        200,
        &MeBody {
            user_id: &caller.user_id,
            appid: caller.appid.as_ref(),
            openid: &caller.openid,
            unionid: caller.unionid.as_deref(),
        },
    ))
}
