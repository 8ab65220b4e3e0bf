//! `POST /phone`: decrypt the phone number the mini-program received.
//! `POST /open-data`: decrypt any other open-data payload (share info, WeRun).

use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use crate::domain::account::BoundPhone;
use crate::domain::app::{AppId, Apps};
use crate::domain::crypto::{
    DecryptFailure, EncryptedData, check_watermark_fresh, decrypt_open_data,
};
use crate::domain::phone::PhoneNumber;
use crate::domain::redact::{mask_openid, mask_phone};
use crate::domain::session::Session;
use crate::domain::time::epoch_seconds;
use crate::edge::authenticate::{authenticate, require_mini_program};
use crate::edge::body::{JsonBody, code_field, invalid};
use crate::edge::error::ApiError;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::edge::routes::{Handler, Route};
use crate::ports::accounts::AccountStore;
use crate::ports::keys::PublicKeyStore;
use crate::ports::sessions::SessionStore;
use crate::runtime::config::DEFAULT_WATERMARK_MAX_AGE_SECONDS;
use crate::runtime::deadline::Deadline;
use crate::services::access::TokenCheck;
use crate::wechat::server_api::{NoAccessToken, WeChatServerApi};

/// The contract's limit on `encryptedData`; a phone payload is about 250.
pub const MAX_ENCRYPTED_DATA_CHARS: usize = 8192;

pub struct DecryptPhone<S, A = NoAccessToken> {
    store: S,
    pub(super) wechat: A,
    /// `WECHAT_APPS`: a session's watermark and access token are its app's.
    apps: Apps,
    watermark_max_age_seconds: Option<u64>,
    /// Store the number on the account (`BIND_PHONE`, default true).
    bind_phone: bool,
    tokens: TokenCheck,
}

impl<S: SessionStore> DecryptPhone<S> {
    /// Watermarks older than 300 s are refused; see `with_watermark_max_age`.
    /// Phone by code needs `with_wechat`.
    pub fn new(store: S, apps: Apps) -> Self {
        Self {
            store,
            wechat: None,
            tokens: TokenCheck::default().with_apps(apps.clone()),
            apps,
            watermark_max_age_seconds: Some(DEFAULT_WATERMARK_MAX_AGE_SECONDS),
            bind_phone: true,
        }
    }
}

impl<S: SessionStore + AccountStore + PublicKeyStore, A: WeChatServerApi> DecryptPhone<S, A> {
    /// Enables phone by code (`{"code"}`): WeChat's getuserphonenumber.
    pub fn with_wechat<B: WeChatServerApi>(self, wechat: B) -> DecryptPhone<S, B> {
        DecryptPhone {
            store: self.store,
            wechat,
            apps: self.apps,
            watermark_max_age_seconds: self.watermark_max_age_seconds,
            bind_phone: self.bind_phone,
            tokens: self.tokens,
        }
    }

    /// How JWTs are checked (`ISSUER`, `AUDIENCE`); the apps stay this one's.
    pub fn with_token_check(mut self, tokens: TokenCheck) -> Self {
        self.tokens = tokens.with_apps(self.apps.clone());
        self
    }

    /// The session's app (`authenticate` filled it in).
    fn app_of<'a>(&'a self, session: &'a Session) -> &'a AppId {
        session
            .appid
            .as_ref()
            .unwrap_or(&self.apps.default_app().id)
    }

    /// `false` (`BIND_PHONE=false`): the number is only returned, not stored.
    pub fn with_bind_phone(mut self, bind_phone: bool) -> Self {
        self.bind_phone = bind_phone;
        self
    }

    /// Stores the number on the caller's account. The user has the number
    /// either way: a failure is logged and the answer stands.
    async fn bind(&self, session: &Session, phone: &PhoneNumber, deadline: Deadline) {
        if !self.bind_phone {
            return;
        }
        let bound = BoundPhone {
            number: phone.clone(),
            bound_at: epoch_seconds(),
        };
        let binding = self.store.bind_phone(&session.user_id, &bound);
        match deadline.run(binding).await {
            Some(Ok(true)) => {}
            Some(Ok(false)) => warn!("no account to bind the phone number to (deleted meanwhile)"),
            Some(Err(err)) => warn!(error = %err, "binding the phone number failed"),
            None => warn!("binding the phone number ran out of time"),
        }
    }

    /// `None` turns the freshness check off (`WATERMARK_MAX_AGE_SECONDS=0`).
    pub fn with_watermark_max_age(mut self, seconds: Option<u64>) -> Self {
        self.watermark_max_age_seconds = seconds;
        self
    }

    /// Decrypts the request's payload with the session's key and checks the
    /// watermark (appid, then age). Every failure is the one `decrypt_failed`.
    fn open(
        &self,
        session: &Session,
        data: &EncryptedData,
    ) -> Result<Map<String, Value>, ApiError> {
        let session_key = super::checks::usable_session_key(session)?;
        let opened = decrypt_open_data(session_key, data, self.app_of(session).as_str()).and_then(
            |object| match self.watermark_max_age_seconds {
                Some(max_age) => {
                    check_watermark_fresh(&object, max_age, epoch_seconds()).map(|()| object)
                }
                None => Ok(object),
            },
        );
        opened.map_err(|reason: DecryptFailure| {
            debug!(%reason, openid = %mask_openid(&session.openid), "decrypt failed");
            ApiError::DecryptFailed
        })
    }

    /// `POST /open-data`: the decrypted object without its watermark.
    async fn open_data(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let (_, session) = authenticate(&self.store, &self.tokens, &request).await?;
        require_mini_program(&self.tokens, &session)?;
        let body = JsonBody::from_request(&request)?;
        let mut object = self.open(&session, &encrypted_data(&body)?)?;
        object.remove("watermark");
        info!(openid = %mask_openid(&session.openid), "open data decrypted");
        Ok(ApiResponse::json(200, &object))
    }

    /// `POST /phone`: by code, or by decrypting encryptedData + iv.
    async fn phone(&self, request: ApiRequest) -> Result<ApiResponse, ApiError> {
        let (_, session) = authenticate(&self.store, &self.tokens, &request).await?;
        require_mini_program(&self.tokens, &session)?;
        let body = JsonBody::from_request(&request)?;
        if body.has("code") {
            return self.phone_by_code(&body, &session, request.deadline).await;
        }
        let object = self.open(&session, &encrypted_data(&body)?)?;
        let phone = PhoneNumber::from_fields(&object).ok_or_else(|| {
            debug!(openid = %mask_openid(&session.openid), "decrypted data has no phone fields");
            ApiError::DecryptFailed
        })?;
        info!(
            openid = %mask_openid(&session.openid),
            phone = %mask_phone(&phone.pure_phone_number),
            "phone number decrypted"
        );
        self.bind(&session, &phone, request.deadline).await;
        Ok(ApiResponse::json(200, &phone))
    }

    /// `{"code"}`: WeChat decrypts on its side (getuserphonenumber) for the
    /// session's openid. No ciphertext passes through the client, so there is
    /// nothing to tamper with.
    async fn phone_by_code(
        &self,
        body: &JsonBody,
        session: &Session,
        deadline: Deadline,
    ) -> Result<ApiResponse, ApiError> {
        if body.has("encryptedData") || body.has("iv") {
            return Err(invalid(
                "Send either code (from the getPhoneNumber button) or encryptedData + iv, not both."
                    .into(),
            ));
        }
        let code = code_field(body)?;
        let appid = self.app_of(session);
        let info = self
            .wechat
            .phone_number(appid, code, &session.openid, deadline)
            .await
            .map_err(|err| match ApiError::from(err) {
                ApiError::InvalidCode => ApiError::InvalidPhoneCode,
                other => other,
            })?;
        if info
            .watermark_appid
            .as_deref()
            .is_some_and(|watermark| watermark != appid.as_str())
        {
            warn!("getuserphonenumber answered for another appid");
            return Err(ApiError::WeChat { errcode: None });
        }
        info!(
            openid = %mask_openid(&session.openid),
            phone = %mask_phone(&info.phone.pure_phone_number),
            "phone number fetched by code"
        );
        self.bind(session, &info.phone, deadline).await;
        Ok(ApiResponse::json(200, &info.phone))
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

impl<S: SessionStore + AccountStore + PublicKeyStore, A: WeChatServerApi> Handler
    for DecryptPhone<S, A>
{
    fn serves(&self, route: Route) -> bool {
        matches!(route, Route::Phone | Route::OpenData)
    }

    async fn handle(&self, route: Route, request: ApiRequest) -> ApiResponse {
        let answer = match route {
            Route::OpenData => self.open_data(request).await,
            _ => self.phone(request).await,
        };
        answer.unwrap_or_else(ApiResponse::from)
    }
}
