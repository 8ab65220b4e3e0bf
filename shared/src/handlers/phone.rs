//! `POST /phone`: decrypt the phone number the mini-program received.

use tracing::{debug, info};

use crate::api::{
    ApiRequest, ApiResponse, Handler, JsonBody, authenticate, check_method, check_size, invalid,
};
use crate::crypto::EncryptedData;
use crate::error::ApiError;
use crate::phone::decrypt_phone;
use crate::redact::{mask_openid, mask_phone};
use crate::session::SessionStore;

/// The contract's limit on `encryptedData`; a phone payload is about 250.
pub const MAX_ENCRYPTED_DATA_CHARS: usize = 8192;

pub struct DecryptPhone<S> {
    store: S,
    appid: String,
}

impl<S: SessionStore> DecryptPhone<S> {
    pub fn new(store: S, appid: String) -> Self {
        Self { store, appid }
    }

    async fn phone(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        check_size(&request)?;
        check_method(&request, "POST")?;
        let (_, session) = authenticate(&self.store, &request).await?;
        let body = JsonBody::parse(&request.body)?;
        let data = encrypted_data(&body)?;
        let phone = decrypt_phone(&session.session_key, &data, &self.appid).map_err(|reason| {
            debug!(%reason, openid = %mask_openid(&session.openid), "phone decrypt failed");
            ApiError::DecryptFailed
        })?;
        info!(
            openid = %mask_openid(&session.openid),
            phone = %mask_phone(&phone.pure_phone_number),
            "phone number decrypted"
        );
        Ok(ApiResponse::json(200, &phone))
    }
}

/// `encryptedData` + `iv` checked for shape: everything wrong here is the
/// client's mistake (400), and only what passes reaches the cipher.
pub fn encrypted_data(body: &JsonBody) -> Result<EncryptedData, ApiError> {
    body.required_str("encryptedData")?;
    body.required_str("iv")?;
    let ciphertext = body.base64_field("encryptedData", MAX_ENCRYPTED_DATA_CHARS)?;
    let iv = body.base64_field("iv", MAX_ENCRYPTED_DATA_CHARS)?;
    if iv.len() != 16 {
        return Err(invalid("iv must decode to exactly 16 bytes.".into()));
    }
    EncryptedData::new(ciphertext, &iv).ok_or_else(|| {
        invalid("encryptedData must decode to a non-empty multiple of 16 bytes.".into())
    })
}

impl<S: SessionStore> Handler for DecryptPhone<S> {
    async fn handle(&self, request: ApiRequest) -> ApiResponse {
        self.phone(request).await.unwrap_or_else(ApiResponse::from)
    }
}
