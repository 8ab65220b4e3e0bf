//! The in-process WeChat of this crate's unit tests. `infra/wechat-sim` is the
//! WeChat of the local server and the integration tests; unit tests run on
//! tokio's paused clock, where waiting on a socket lets the clock jump past
//! every timeout, so they need a WeChat without I/O. Its token rules are the
//! simulator's: one current token, replaced only by a forced refresh.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::phone::PhoneNumber;
use crate::domain::redact::{AccessToken, AppSecret};
use crate::domain::wechat::{FetchedToken, PhoneInfo, WeChatError, WxSession};
use crate::ports::wechat::WeChatApi;

/// Clones share one WeChat, as containers share the real one.
#[derive(Debug, Default, Clone)]
pub(crate) struct InProcessWeChat(Arc<State>);

#[derive(Debug, Default)]
pub(crate) struct State {
    /// What jscode2session answers, next first; `session` once it runs out.
    script: Mutex<Vec<Result<WxSession, WeChatError>>>,
    session: Option<WxSession>,
    /// jscode2session calls.
    pub(crate) calls: AtomicU32,
    /// (appid, secret) of every call that carried the appsecret, in order.
    pub(crate) credentials_seen: Mutex<Vec<(String, String)>>,
    pub(crate) generation: AtomicU32,
    /// The current token is refused (40001) until a forced refresh.
    pub(crate) revoked: AtomicBool,
    /// stable_token calls in normal mode and with force_refresh.
    pub(crate) normal: AtomicU32,
    pub(crate) forced: AtomicU32,
    pub(crate) phone_calls: AtomicU32,
    /// The next this many calls (jscode2session or getuserphonenumber) never
    /// answer, as a WeChat whose answer is lost in transit. A phone code such a
    /// call carried is spent: WeChat answers 40029 to it from then on.
    pub(crate) stall_next: AtomicU32,
    spent_phone_codes: Mutex<Vec<String>>,
}

impl InProcessWeChat {
    /// Logs every code in as `session`, after answering `script` in order.
    pub(crate) fn logging_in(
        session: WxSession,
        mut script: Vec<Result<WxSession, WeChatError>>,
    ) -> Self {
        script.reverse();
        Self(Arc::new(State {
            script: Mutex::new(script),
            session: Some(session),
            ..State::default()
        }))
    }

    pub(crate) fn current_token(&self) -> String {
        format!("token-{}", self.generation.load(Ordering::SeqCst))
    }

    /// Whether this call is one of the next `stall_next`.
    fn stalls(&self) -> bool {
        self.stall_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn saw(&self, appid: &str, secret: &AppSecret) {
        self.credentials_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((appid.to_owned(), secret.expose().to_owned()));
    }
}

/// The counters and switches, read and set by the tests.
impl std::ops::Deref for InProcessWeChat {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

impl WeChatApi for InProcessWeChat {
    async fn jscode2session(
        &self,
        appid: &str,
        secret: &AppSecret,
        _code: &str,
        _timeout: Duration,
    ) -> Result<WxSession, WeChatError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.saw(appid, secret);
        if self.stalls() {
            std::future::pending::<()>().await;
        }
        let next = self.script.lock().unwrap_or_else(|p| p.into_inner()).pop();
        next.or_else(|| self.session.clone().map(Ok))
            .unwrap_or(Err(WeChatError::Malformed("no session to hand out")))
    }

    async fn stable_token(
        &self,
        appid: &str,
        secret: &AppSecret,
        force_refresh: bool,
        _timeout: Duration,
    ) -> Result<FetchedToken, WeChatError> {
        self.saw(appid, secret);
        if force_refresh {
            self.forced.fetch_add(1, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.revoked.store(false, Ordering::SeqCst);
        } else {
            self.normal.fetch_add(1, Ordering::SeqCst);
        }
        Ok(FetchedToken {
            token: AccessToken::new(self.current_token()),
            expires_in: 7200,
        })
    }

    /// Answers the code itself as the phone number; a code is single-use only
    /// once a stalled call spent it.
    async fn get_phone_number(
        &self,
        token: &AccessToken,
        code: &str,
        _openid: &str,
        _timeout: Duration,
    ) -> Result<PhoneInfo, WeChatError> {
        self.phone_calls.fetch_add(1, Ordering::SeqCst);
        if token.expose() != self.current_token() || self.revoked.load(Ordering::SeqCst) {
            return Err(WeChatError::TokenRejected(40001));
        }
        let stalls = {
            let mut spent = self
                .spent_phone_codes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if spent.iter().any(|c| c == code) {
                return Err(WeChatError::InvalidCode(40029));
            }
            let stalls = self.stalls();
            if stalls {
                spent.push(code.to_owned());
            }
            stalls
        };
        if stalls {
            std::future::pending::<()>().await;
        }
        Ok(PhoneInfo {
            phone: PhoneNumber {
                phone_number: code.into(),
                pure_phone_number: code.into(),
                country_code: "86".into(),
            },
            watermark_appid: None,
        })
    }
}
