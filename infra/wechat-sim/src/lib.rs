//! One simulator of the WeChat server API, over real HTTP on loopback. The local
//! server (`wxauth-local`) points the product's own HTTP client at it, and the
//! tests use it as their fake WeChat, so both see one set of rules:
//!
//! - `jscode2session` checks appid (40013), secret (40125) and grant_type
//!   (40002). A code is good once (40163 after). Codes come from `issue_code`;
//!   with [`UnknownCodes::AcceptOnce`] any other code is good once too, with an
//!   openid stable per code prefix (`alice-1` and `alice-2` are one user).
//!   Unknown codes are 40029 otherwise.
//! - Reserved codes misbehave instead (see [`faults`]): `errcode-<n>`,
//!   `text-<n>`, `slow`, `html`, `notjson`, `huge`, `noopenid`.
//! - `stable_token` hands out one current token in normal mode until a forced
//!   refresh (here or "elsewhere") replaces it; a replaced or revoked token is
//!   refused with 40001 by the APIs that take it.
//! - `getuserphonenumber` takes single-use phone codes from `issue_phone_code`
//!   (bound to an openid); with `AcceptOnce`, any other code is good once,
//!   `phone-<digits>` answering those digits and others [`DEFAULT_PHONE`].
//! - `checksession` checks the HMAC-SHA256 signature against the newest
//!   session_key of the openid (87009 otherwise), as WeChat keeps only that one.
//!
//! It lives outside the product crate, so no Lambda binary can enable it.

pub mod faults;
mod routes;
pub mod server;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// The phone number of an unknown phone code without digits of its own.
pub const DEFAULT_PHONE: &str = "13800138000";

/// What `jscode2session` and `getuserphonenumber` make of a code nobody issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCodes {
    /// 40029, as WeChat answers a made-up code (the tests).
    Refuse,
    /// Good once, as if `wx.login` had issued it (the local server).
    AcceptOnce,
}

/// What WeChat issued for a code.
#[derive(Debug, Clone)]
pub struct Issued {
    pub openid: String,
    pub unionid: Option<String>,
    /// base64 of the 16 key bytes, as WeChat sends it.
    pub session_key: String,
    pub key_bytes: [u8; 16],
}

impl Issued {
    /// A fresh session_key for `openid`.
    pub fn new(openid: &str, unionid: Option<&str>) -> Self {
        let key_bytes: [u8; 16] = random();
        Self {
            openid: openid.into(),
            unionid: unionid.map(Into::into),
            session_key: STANDARD.encode(key_bytes),
            key_bytes,
        }
    }
}

/// The openid the simulator gives every unknown code starting with `prefix-`.
pub fn openid_for(code: &str) -> String {
    let prefix = code.split('-').next().unwrap_or(code);
    let digest = Sha256::digest(prefix.as_bytes());
    format!("oSIM{}", &URL_SAFE_NO_PAD.encode(digest)[..24])
}

/// Clones share one WeChat, as every caller of the real one does.
#[derive(Clone)]
pub struct WeChatSim {
    /// `http://127.0.0.1:<port>`: the `WECHAT_API_BASE` to give the product.
    pub base: String,
    state: Arc<Mutex<State>>,
    connections: Arc<AtomicU64>,
}

struct State {
    appid: String,
    secret: String,
    unknown_codes: UnknownCodes,
    codes: HashMap<String, Issued>,
    used: HashSet<String>,
    busy_next: u32,
    stall_next: u32,
    calls: u32,
    secrets_seen: Vec<String>,
    /// The newest session_key per openid: WeChat keeps only that one valid.
    latest_keys: HashMap<String, String>,
    token: TokenState,
    /// Issued phone codes: (openid, phone).
    phone_codes: HashMap<String, (String, String)>,
    used_phone_codes: HashSet<String>,
    phone_calls: u32,
    checksession_calls: u32,
}

struct TokenState {
    nonce: String,
    generation: u32,
    revoked: bool,
    expires_in: i64,
    normal_calls: u32,
    forced_calls: u32,
}

impl TokenState {
    fn current(&self) -> String {
        format!("ACCESS-{}-{}", self.nonce, self.generation)
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source does not fail on the machines this runs on; were it
    // to, zeros only make codes and keys predictable in a simulator.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

fn fresh(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random::<6>()))
}

impl WeChatSim {
    /// A simulator for `appid` + `secret` that refuses codes it did not issue.
    pub async fn start(appid: &str, secret: &str) -> std::io::Result<Self> {
        Self::start_with(appid, secret, UnknownCodes::Refuse).await
    }

    pub async fn start_with(
        appid: &str,
        secret: &str,
        unknown_codes: UnknownCodes,
    ) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            appid: appid.into(),
            secret: secret.into(),
            unknown_codes,
            codes: HashMap::new(),
            used: HashSet::new(),
            busy_next: 0,
            stall_next: 0,
            calls: 0,
            secrets_seen: Vec::new(),
            latest_keys: HashMap::new(),
            token: TokenState {
                nonce: hex::encode(random::<6>()),
                generation: 0,
                revoked: false,
                expires_in: 7200,
                normal_calls: 0,
                forced_calls: 0,
            },
            phone_codes: HashMap::new(),
            used_phone_codes: HashSet::new(),
            phone_calls: 0,
            checksession_calls: 0,
        }));
        let shared = Arc::clone(&state);
        let (addr, connections) =
            server::serve_counting(move |request| routes::answer(Arc::clone(&shared), request))
                .await?;
        Ok(Self {
            base: format!("http://{addr}"),
            state,
            connections,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A code as `wx.login` would hand it to the mini-program, for a new user.
    pub fn issue_code(&self) -> (String, Issued) {
        self.issue_code_for(&fresh("o"), None)
    }

    pub fn issue_code_for(&self, openid: &str, unionid: Option<&str>) -> (String, Issued) {
        let issued = Issued::new(openid, unionid);
        let code = fresh("081");
        self.accept_code(&code, issued.clone());
        (code, issued)
    }

    /// Makes `code` a valid single-use code for `issued` (fixed codes in event files).
    pub fn accept_code(&self, code: &str, issued: Issued) {
        self.state().codes.insert(code.to_owned(), issued);
    }

    /// From now on only `secret` is accepted; the old one gets 40125.
    pub fn rotate_secret(&self, secret: &str) {
        self.state().secret = secret.into();
    }

    /// The next `n` calls of jscode2session or getuserphonenumber answer
    /// errcode -1 (system busy).
    pub fn busy_next(&self, n: u32) {
        self.state().busy_next = n;
    }

    /// The next `n` logins or phone-number calls with a valid code use the code
    /// up, then answer only after `faults::STALL`: the caller's attempt times
    /// out though WeChat spent the code.
    pub fn stall_next(&self, n: u32) {
        self.state().stall_next = n;
    }

    /// jscode2session calls so far.
    pub fn calls(&self) -> u32 {
        self.state().calls
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// The secret of every jscode2session call, in order.
    pub fn secrets_seen(&self) -> Vec<String> {
        self.state().secrets_seen.clone()
    }

    /// `stable_token` calls so far: (normal mode, forced refreshes).
    pub fn stable_token_calls(&self) -> (u32, u32) {
        let s = self.state();
        (s.token.normal_calls, s.token.forced_calls)
    }

    /// The access token WeChat currently honours.
    pub fn current_token(&self) -> String {
        self.state().token.current()
    }

    /// WeChat stops honouring the current token (40001) until a forced refresh.
    pub fn revoke_token(&self) {
        self.state().token.revoked = true;
    }

    /// Another system forced a refresh: the current token is refused from now
    /// on, and normal mode hands out the new one.
    pub fn replace_token_elsewhere(&self) {
        let mut s = self.state();
        s.token.generation += 1;
        s.token.revoked = false;
    }

    /// The `expires_in` stable_token answers from now on.
    pub fn set_token_lifetime(&self, seconds: i64) {
        self.state().token.expires_in = seconds;
    }

    /// A single-use code as the getPhoneNumber button hands it to `openid`.
    pub fn issue_phone_code(&self, openid: &str, phone: &str) -> String {
        let code = fresh("phone");
        self.state()
            .phone_codes
            .insert(code.clone(), (openid.into(), phone.into()));
        code
    }

    /// getuserphonenumber and checksession calls so far.
    pub fn user_api_calls(&self) -> (u32, u32) {
        let s = self.state();
        (s.phone_calls, s.checksession_calls)
    }
}

/// Every holder makes whole updates and never awaits, so the state behind a
/// poisoned lock is still consistent.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
