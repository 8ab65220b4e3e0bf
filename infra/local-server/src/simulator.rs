//! A WeChat simulator for local runs without credentials. It lives only in this
//! crate, so no Lambda binary can ever enable it.
//!
//! - Any code is accepted once; a second use answers 40163, as WeChat does.
//! - The openid is stable per code prefix (the text before the first `-`), so
//!   `alice-1` and `alice-2` log in the same user; every login gets a fresh
//!   session_key.
//! - Reserved codes answer an errcode instead: `errcode-40029`, `errcode-40163`,
//!   `errcode-40226`, `errcode-45011`, `errcode--1` (any integer works).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use wxauth::redact::{AppSecret, SessionKey};
use wxauth::wechat::{WeChatApi, WeChatError, WxSession};

#[derive(Debug, Default)]
pub struct Simulator {
    used: Mutex<HashSet<String>>,
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
        if let Some(errcode) = code.strip_prefix("errcode-").and_then(|n| n.parse().ok()) {
            return Err(WeChatError::from_errcode(errcode));
        }
        let fresh = self
            .used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(code.to_owned());
        if !fresh {
            return Err(WeChatError::InvalidCode(40163));
        }
        let mut key = [0u8; 16];
        getrandom::fill(&mut key).map_err(|err| WeChatError::Transport(err.to_string()))?;
        Ok(WxSession {
            openid: openid_for(code),
            unionid: None,
            session_key: SessionKey::new(STANDARD.encode(key)),
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
