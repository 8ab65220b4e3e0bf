//! Routes only the local server has.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha1::{Digest, Sha1};
use wxauth::domain::crypto::{decode_base64, encrypt_like_wechat};
use wxauth::domain::time::epoch_seconds;
use wxauth::edge::authenticate::{authenticate, require_mini_program};
use wxauth::edge::body::{JsonBody, invalid};
use wxauth::edge::error::ApiError;
use wxauth::edge::request::{ApiRequest, ApiResponse};
use wxauth::ports::errors::Upstream;
use wxauth::ports::keys::PublicKeyStore;
use wxauth::ports::sessions::SessionStore;
use wxauth::services::access::TokenCheck;

use wechat_sim::DEFAULT_PHONE;

/// `POST /dev/phone-payload` (simulator only): encrypts a phone number with the
/// caller's session_key as WeChat would for `getPhoneNumber`, so that `/phone`
/// can be tried end to end. Body: `{"phoneNumber": "..."}` (optional).
pub async fn phone_payload(
    store: &(impl SessionStore + PublicKeyStore),
    tokens: &TokenCheck,
    request: ApiRequest,
) -> ApiResponse {
    match encrypt_phone(store, tokens, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn encrypt_phone(
    store: &(impl SessionStore + PublicKeyStore),
    tokens: &TokenCheck,
    request: ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let (_, session) = authenticate(store, tokens, &request).await?;
    require_mini_program(tokens, &session)?;
    // The watermark names the session's app, as WeChat's does.
    let appid = session
        .appid
        .as_ref()
        .map(|appid| appid.as_str().to_owned())
        .unwrap_or_default();
    let phone = if request.body.iter().all(u8::is_ascii_whitespace) {
        DEFAULT_PHONE.to_owned()
    } else {
        JsonBody::from_request(&request)?
            .required_str("phoneNumber")?
            .to_owned()
    };
    if phone.len() > 32
        || !phone
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'+' || b == b' ')
    {
        return Err(invalid(
            "phoneNumber must be digits, '+' and spaces.".into(),
        ));
    }
    let pure = phone
        .rsplit(' ')
        .next()
        .unwrap_or(&phone)
        .trim_start_matches('+');
    let plaintext = json!({
        "phoneNumber": phone,
        "purePhoneNumber": pure,
        "countryCode": "86",
        "watermark": {"appid": appid, "timestamp": epoch_seconds()},
    })
    .to_string();
    let key: [u8; 16] = decode_base64(session_key(&session)?.expose())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(ApiError::Unavailable(Upstream::SessionTable))?;
    let mut iv = [0u8; 16];
    getrandom::fill(&mut iv).map_err(|_| ApiError::Unavailable(Upstream::SessionTable))?;
    let ciphertext = encrypt_like_wechat(&key, &iv, plaintext.as_bytes());
    Ok(ApiResponse::json(
        200,
        &json!({"encryptedData": STANDARD.encode(ciphertext), "iv": STANDARD.encode(iv)}),
    ))
}

/// `POST /dev/user-info` (simulator only): what `wx.getUserInfo` hands the
/// mini-program, signed with the caller's session_key: `{"rawData", "signature"}`
/// for `POST /session`. Body: `{"nickName": "..."}` (optional).
pub async fn user_info(
    store: &(impl SessionStore + PublicKeyStore),
    tokens: &TokenCheck,
    request: ApiRequest,
) -> ApiResponse {
    match sign_user_info(store, tokens, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn sign_user_info(
    store: &(impl SessionStore + PublicKeyStore),
    tokens: &TokenCheck,
    request: ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let (_, session) = authenticate(store, tokens, &request).await?;
    require_mini_program(tokens, &session)?;
    let nick_name = if request.body.iter().all(u8::is_ascii_whitespace) {
        "wxauth-dev".to_owned()
    } else {
        JsonBody::from_request(&request)?
            .required_str("nickName")?
            .to_owned()
    };
    let raw_data = json!({
        "nickName": nick_name,
        "gender": 0,
        "language": "zh_CN",
        "city": "",
        "province": "",
        "country": "",
        "avatarUrl": "",
    })
    .to_string();
    let mut hasher = Sha1::new();
    hasher.update(raw_data.as_bytes());
    hasher.update(session_key(&session)?.expose().as_bytes());
    let signature = hex::encode(hasher.finalize());
    Ok(ApiResponse::json(
        200,
        &json!({"rawData": raw_data, "signature": signature}),
    ))
}

/// The caller's session_key, as the product's routes would use it.
fn session_key(
    session: &wxauth::domain::session::Session,
) -> Result<&wxauth::domain::redact::SessionKey, ApiError> {
    session
        .usable_session_key(wxauth::domain::time::epoch_seconds())
        .ok_or(ApiError::SessionKeyExpired)
}
