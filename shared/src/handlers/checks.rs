//! Checks the session routes and decrypt-phone share: the session_key a
//! route may use, `?verify=`, and a rawData signature.

use serde_json::Value;

use crate::domain::crypto::{SIGNATURE_HEX_CHARS, signature_matches};
use crate::domain::redact::SessionKey;
use crate::domain::session::Session;
use crate::domain::time::epoch_seconds;
use crate::edge::body::{JsonBody, invalid};
use crate::edge::error::ApiError;
use crate::edge::request::ApiRequest;

pub const MAX_RAW_DATA_CHARS: usize = 8192;

/// The session's session_key, or `session_key_expired` for a refreshed
/// session whose login's key is no longer kept.
pub(crate) fn usable_session_key(session: &Session) -> Result<&SessionKey, ApiError> {
    session
        .usable_session_key(epoch_seconds())
        .ok_or(ApiError::SessionKeyExpired)
}

/// `?verify=wechat` asks for the server-side check; no `verify` is the plain
/// check; any other value is the client's mistake.
pub(super) fn verify_with_wechat(request: &ApiRequest) -> Result<bool, ApiError> {
    match request.query_param("verify").as_deref() {
        None => Ok(false),
        Some("wechat") => Ok(true),
        Some(_) => Err(invalid(
            "verify accepts only the value wechat (GET /session?verify=wechat).".into(),
        )),
    }
}

/// Checks `signature == sha1(rawData + session_key)` and returns rawData parsed.
pub(super) fn verify_raw_data(request: &ApiRequest, session: &Session) -> Result<Value, ApiError> {
    let body = JsonBody::from_request(request)?;
    let raw_data = body.required_str("rawData")?;
    let signature_hex = body.required_str("signature")?;
    if raw_data.chars().count() > MAX_RAW_DATA_CHARS {
        return Err(invalid(format!(
            "rawData is longer than {MAX_RAW_DATA_CHARS} characters."
        )));
    }
    let signature: [u8; 20] = (signature_hex.len() == SIGNATURE_HEX_CHARS)
        .then(|| hex::decode(signature_hex).ok()?.try_into().ok())
        .flatten()
        .ok_or_else(|| invalid("signature must be exactly 40 hex characters.".into()))?;
    let user_info: Value = serde_json::from_str(raw_data).map_err(|_| {
        invalid("rawData is not JSON: send it exactly as wx.getUserInfo returned it.".into())
    })?;
    if !signature_matches(raw_data, usable_session_key(session)?, &signature) {
        return Err(ApiError::SignatureMismatch);
    }
    Ok(user_info)
}
