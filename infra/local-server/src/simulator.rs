//! A WeChat simulator for local runs without credentials. It lives only in this
//! crate, so no Lambda binary can ever enable it.
//!
//! - Any code is accepted once; a second use answers 40163, as WeChat does.
//! - The openid is stable per code prefix (the text before the first `-`), so
//!   `alice-1` and `alice-2` log in the same user; every login gets a fresh
//!   session_key.
//! - Reserved codes answer an errcode instead: `errcode-40029`, `errcode-40163`,
//!   `errcode-40226`, `errcode-45011`, `errcode--1` (any integer works).
//! - `stable_token` hands out one token until a forced refresh replaces it.
//! - `getuserphonenumber` accepts any code once: `phone-<digits>` answers those
//!   digits, any other code 13800138000; reserved codes as above.
//! - `checksession` says yes only for the newest session_key of the openid (a
//!   later login of the same user replaces it, as on WeChat).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use wxauth::crypto::checksession_signature;
use wxauth::phone::PhoneNumber;
use wxauth::redact::{AccessToken, AppSecret, SessionKey};
use wxauth::wechat::{
    FetchedToken, PhoneInfo, SessionKeyStatus, WeChatApi, WeChatError, WxSession,
};

/// The phone number of codes without digits of their own.
pub const DEFAULT_PHONE: &str = "13800138000";

/// Clones share one state, as every caller of the real WeChat shares WeChat.
#[derive(Debug, Default, Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    used: HashSet<String>,
    used_phone_codes: HashSet<String>,
    latest_keys: HashMap<String, SessionKey>,
    token_generation: u32,
}

impl State {
    fn token(&self) -> String {
        format!("SIMULATED-ACCESS-TOKEN-{}", self.token_generation)
    }
}

impl Simulator {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_token(&self, token: &AccessToken) -> Result<(), WeChatError> {
        if token.expose() == self.state().token() {
            Ok(())
        } else {
            Err(WeChatError::TokenRejected(40001))
        }
    }
}

fn reserved(code: &str) -> Option<i64> {
    code.strip_prefix("errcode-").and_then(|n| n.parse().ok())
}

/// The openid the simulator gives every code starting with `prefix`.
pub fn openid_for(code: &str) -> String {
    let prefix = code.split('-').next().unwrap_or(code);
    let digest = Sha256::digest(prefix.as_bytes());
    format!("oSIM{}", &URL_SAFE_NO_PAD.encode(digest)[..24])
}

impl WeChatApi for Simulator {
    async fn jscode2session(
        &self,
        _appid: &str,
        _secret: &AppSecret,
        code: &str,
        _timeout: Duration,
    ) -> Result<WxSession, WeChatError> {
        if let Some(errcode) = reserved(code) {
            return Err(WeChatError::from_errcode(errcode));
        }
        let mut state = self.state();
        if !state.used.insert(code.to_owned()) {
            return Err(WeChatError::InvalidCode(40163));
        }
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(|err| WeChatError::Transport(err.to_string()))?;
        let session = WxSession {
            openid: openid_for(code),
            unionid: None,
            session_key: SessionKey::new(STANDARD.encode(key)),
        };
        state
            .latest_keys
            .insert(session.openid.clone(), session.session_key.clone());
        Ok(session)
    }

    async fn stable_token(
        &self,
        _appid: &str,
        _secret: &AppSecret,
        force_refresh: bool,
        _timeout: Duration,
    ) -> Result<FetchedToken, WeChatError> {
        let mut state = self.state();
        if force_refresh {
            state.token_generation += 1;
        }
        Ok(FetchedToken {
            token: AccessToken::new(state.token()),
            expires_in: 7200,
        })
    }

    async fn get_phone_number(
        &self,
        token: &AccessToken,
        code: &str,
        _openid: &str,
        _timeout: Duration,
    ) -> Result<PhoneInfo, WeChatError> {
        self.check_token(token)?;
        if let Some(errcode) = reserved(code) {
            return Err(WeChatError::from_token_call_errcode(errcode));
        }
        if !self.state().used_phone_codes.insert(code.to_owned()) {
            return Err(WeChatError::InvalidCode(40029));
        }
        let phone = code
            .strip_prefix("phone-")
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(DEFAULT_PHONE);
        Ok(PhoneInfo {
            phone: PhoneNumber {
                phone_number: phone.into(),
                pure_phone_number: phone.into(),
                country_code: "86".into(),
            },
            watermark_appid: None,
        })
    }

    async fn check_session_key(
        &self,
        token: &AccessToken,
        openid: &str,
        signature: &str,
        _timeout: Duration,
    ) -> Result<SessionKeyStatus, WeChatError> {
        self.check_token(token)?;
        let state = self.state();
        let valid = state
            .latest_keys
            .get(openid)
            .is_some_and(|key| checksession_signature(key) == signature);
        Ok(if valid {
            SessionKeyStatus::Valid
        } else {
            SessionKeyStatus::Invalid
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> AppSecret {
        AppSecret::new("simulated")
    }

    #[tokio::test]
    async fn codes_are_single_use_with_stable_openids_and_fresh_keys() {
        let sim = Simulator::default();
        let t = Duration::from_secs(1);
        let a1 = sim
            .jscode2session("wx", &secret(), "alice-1", t)
            .await
            .unwrap();
        let a2 = sim
            .jscode2session("wx", &secret(), "alice-2", t)
            .await
            .unwrap();
        let b = sim.jscode2session("wx", &secret(), "bob", t).await.unwrap();
        assert_eq!(a1.openid, a2.openid);
        assert_ne!(a1.openid, b.openid);
        assert_ne!(a1.session_key, a2.session_key);
        assert_eq!(
            sim.jscode2session("wx", &secret(), "alice-1", t).await,
            Err(WeChatError::InvalidCode(40163))
        );
    }

    #[tokio::test]
    async fn phone_codes_and_session_key_checks() {
        let sim = Simulator::default();
        let t = Duration::from_secs(1);
        let token = sim
            .stable_token("wx", &secret(), false, t)
            .await
            .unwrap()
            .token;
        let phone = |code: &'static str| sim.get_phone_number(&token, code, "o", t);
        assert_eq!(
            phone("phone-13900139000").await.unwrap().phone.phone_number,
            "13900139000"
        );
        assert_eq!(
            phone("anything").await.unwrap().phone.phone_number,
            DEFAULT_PHONE
        );
        assert_eq!(
            phone("anything").await,
            Err(WeChatError::InvalidCode(40029))
        );
        assert_eq!(phone("errcode-45011").await, Err(WeChatError::RateLimited));
        assert_eq!(
            sim.get_phone_number(&AccessToken::new("stale"), "x", "o", t)
                .await,
            Err(WeChatError::TokenRejected(40001))
        );

        let first = sim
            .jscode2session("wx", &secret(), "carol-1", t)
            .await
            .unwrap();
        let check = |key: &SessionKey| {
            let signature = checksession_signature(key);
            let openid = first.openid.clone();
            let token = token.clone();
            let sim = &sim;
            async move { sim.check_session_key(&token, &openid, &signature, t).await }
        };
        assert_eq!(check(&first.session_key).await, Ok(SessionKeyStatus::Valid));
        let second = sim
            .jscode2session("wx", &secret(), "carol-2", t)
            .await
            .unwrap();
        assert_eq!(
            check(&first.session_key).await,
            Ok(SessionKeyStatus::Invalid)
        );
        assert_eq!(
            check(&second.session_key).await,
            Ok(SessionKeyStatus::Valid)
        );
    }

    #[tokio::test]
    async fn reserved_codes_answer_errcodes() {
        let sim = Simulator::default();
        let t = Duration::from_secs(1);
        for (code, want) in [
            ("errcode-40029", WeChatError::InvalidCode(40029)),
            ("errcode-40226", WeChatError::Blocked),
            ("errcode-45011", WeChatError::RateLimited),
            ("errcode--1", WeChatError::Busy),
        ] {
            assert_eq!(
                sim.jscode2session("wx", &secret(), code, t).await,
                Err(want)
            );
        }
    }
}
