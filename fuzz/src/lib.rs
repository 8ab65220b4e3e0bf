//! What the fuzz targets share: a runtime, and a memory store holding one live
//! session whose token only the target knows.

use std::sync::Arc;

use std::time::Duration;

use wxauth::domain::phone::PhoneNumber;
use wxauth::domain::redact::{AccessToken, AppSecret, SessionKey};
use wxauth::ports::memory::MemorySessionStore;
use wxauth::domain::session::Session;
use wxauth::domain::time::epoch_seconds;
use wxauth::domain::wechat::{FetchedToken, PhoneInfo, WeChatError, WxSession};
use wxauth::ports::wechat::WeChatApi;

pub const OPENID: &str = "oFUZZ";
/// The fuzzed server's one app.
pub const APPID: &str = "wxFUZZ000000000001";

pub fn apps() -> wxauth::domain::app::Apps {
    wxauth::domain::app::Apps::parse(APPID).expect("an appid")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
}

/// The store and the live session's token (random per run, so fuzzed input
/// cannot hold it).
pub fn store_with_live_session() -> (Arc<MemorySessionStore>, String) {
    let store = Arc::new(MemorySessionStore::new());
    let now = epoch_seconds();
    let session = Session {
        user_id: wxauth::domain::account::UserId::generate().expect("OS random source"),
        appid: wxauth::domain::app::AppId::parse(APPID),
        openid: OPENID.into(),
        unionid: None,
        session_key: Some(SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==")),
        session_key_expires_at: None,
        family: None,
        created_at: now,
        expires_at: now + 86_400,
    };
    let token = store.insert_new(session).expect("OS random source");
    (store, token.expose().to_owned())
}

/// A WeChat without I/O: even-length codes log in as `OPENID`, odd ones are
/// refused (40029).
#[derive(Clone)]
pub struct Stub;

impl WeChatApi for Stub {
    async fn jscode2session(&self, _: &str, _: &AppSecret, code: &str, _: Duration) -> Result<WxSession, WeChatError> {
        if code.len() % 2 == 0 {
            Ok(WxSession { openid: OPENID.into(), unionid: None, session_key: SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==") })
        } else {
            Err(WeChatError::InvalidCode(40029))
        }
    }

    async fn stable_token(&self, _: &str, _: &AppSecret, _: bool, _: Duration) -> Result<FetchedToken, WeChatError> {
        Ok(FetchedToken { token: AccessToken::new("ACCESS"), expires_in: 7200 })
    }

    async fn get_phone_number(&self, _: &AccessToken, code: &str, _: &str, _: Duration) -> Result<PhoneInfo, WeChatError> {
        if code.len() % 2 == 0 {
            let number = || "13800138000".to_owned();
            Ok(PhoneInfo {
                phone: PhoneNumber { phone_number: number(), pure_phone_number: number(), country_code: "86".into() },
                watermark_appid: Some(APPID.into()),
            })
        } else {
            Err(WeChatError::InvalidCode(40029))
        }
    }
}

