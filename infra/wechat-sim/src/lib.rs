//! One simulator of the WeChat server API, over real HTTP on loopback. The local
//! server (`wxauth-local`) points the product's own HTTP client at it, and the
//! tests use it as their fake WeChat, so both see one set of rules:
//!
//! - It serves one or more apps ([`SimApp`]): mini-programs and OAuth apps,
//!   each with its appid, appsecret and access token, and, when bound to the
//!   one Open Platform account, unionids. One person has one openid per app
//!   and one unionid across the bound ones.
//! - `jscode2session` (mini-programs) and `sns/oauth2/access_token` (OAuth
//!   apps) check appid (40013), secret (40125) and grant_type (40002). A code
//!   is its app's and good once (40163 after). Codes come from `issue_code`
//!   and its kin; with [`UnknownCodes::AcceptOnce`] any other code is good
//!   once too, for a person stable per code prefix (`alice-1` and `alice-2`
//!   are one person, in every app). Unknown codes are 40029 otherwise.
//! - `sns/oauth2/access_token` leaves the unionid to `sns/userinfo` for the
//!   codes that say so (and for every unknown code), as WeChat may;
//!   `sns/userinfo` answers for the user access token it handed out.
//! - `getuserriskrank` answers rank 0 unless `set_risk` says otherwise.
//! - `/connect/oauth2/authorize` (open.weixin.qq.com's page, where an H5 page
//!   sends its user) agrees at once for `sign_in_as`'s person and redirects
//!   back with a code.
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

/// How an app's users sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimKind {
    MiniProgram,
    OAuth,
}

/// One app the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimApp {
    pub appid: String,
    pub secret: String,
    pub kind: SimKind,
    /// Bound to the Open Platform account: its logins of unknown codes bring
    /// the person's unionid.
    pub bound: bool,
}

impl SimApp {
    pub fn mini_program(appid: &str, secret: &str) -> Self {
        Self {
            appid: appid.into(),
            secret: secret.into(),
            kind: SimKind::MiniProgram,
            bound: false,
        }
    }

    pub fn oauth(appid: &str, secret: &str) -> Self {
        Self {
            kind: SimKind::OAuth,
            ..Self::mini_program(appid, secret)
        }
    }

    /// Bound to the Open Platform account.
    pub fn bound(mut self) -> Self {
        self.bound = true;
        self
    }
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

fn person_of(code: &str) -> &str {
    code.split('-').next().unwrap_or(code)
}

/// The openid the simulator gives, in `appid`, the person of every unknown
/// code starting with `prefix-`.
pub fn openid_in(appid: &str, code: &str) -> String {
    let digest = Sha256::digest(format!("{appid}:{}", person_of(code)).as_bytes());
    format!("oSIM{}", &URL_SAFE_NO_PAD.encode(digest)[..24])
}

/// The unionid of the person of every unknown code starting with `prefix-`,
/// in the apps bound to the Open Platform account.
pub fn unionid_for(code: &str) -> String {
    let digest = Sha256::digest(format!("unionid:{}", person_of(code)).as_bytes());
    format!("uSIM{}", &URL_SAFE_NO_PAD.encode(digest)[..24])
}

/// Clones share one WeChat, as every caller of the real one does.
#[derive(Clone)]
pub struct WeChatSim {
    /// `http://127.0.0.1:<port>`: the `WECHAT_API_BASE` to give the product.
    pub base: String,
    state: Arc<Mutex<State>>,
    connections: Arc<AtomicU64>,
}

/// One app's state: its settings and its access token.
struct AppState {
    app: SimApp,
    token: TokenState,
}

/// An OAuth code's user.
#[derive(Debug, Clone)]
pub struct OAuthUser {
    pub openid: String,
    pub unionid: Option<String>,
    /// `snsapi_base`, `snsapi_userinfo` or `snsapi_login`.
    pub scope: String,
    /// The token answer carries the unionid itself; otherwise only
    /// `sns/userinfo` does.
    pub unionid_in_token: bool,
}

struct State {
    apps: Vec<AppState>,
    unknown_codes: UnknownCodes,
    /// Code → its app and what it stands for.
    codes: HashMap<String, (String, Issued)>,
    oauth_codes: HashMap<String, (String, OAuthUser)>,
    /// User access tokens `sns/oauth2/access_token` handed out.
    user_tokens: HashMap<String, OAuthUser>,
    /// openid → the errcode `getuserriskrank` answers (0: the rank).
    risk: HashMap<String, (i64, i64)>,
    risk_stall_next: u32,
    /// Who signs in at the OAuth authorize page.
    signing_in: String,
    oauth_calls: u32,
    userinfo_calls: u32,
    risk_calls: u32,
    used: HashSet<String>,
    busy_next: u32,
    stall_next: u32,
    calls: u32,
    secrets_seen: Vec<String>,
    /// The newest session_key per openid: WeChat keeps only that one valid.
    latest_keys: HashMap<String, String>,
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
    fn new() -> Self {
        Self {
            nonce: hex::encode(random::<6>()),
            generation: 0,
            revoked: false,
            expires_in: 7200,
            normal_calls: 0,
            forced_calls: 0,
        }
    }

    fn current(&self) -> String {
        format!("ACCESS-{}-{}", self.nonce, self.generation)
    }
}

impl State {
    fn app(&self, appid: &str) -> Option<&AppState> {
        self.apps.iter().find(|state| state.app.appid == appid)
    }

    fn app_mut(&mut self, appid: &str) -> Option<&mut AppState> {
        self.apps.iter_mut().find(|state| state.app.appid == appid)
    }

    /// The first app: the one the single-app calls mean.
    fn first(&mut self) -> &mut AppState {
        &mut self.apps[0]
    }

    /// The app whose current access token this is, if WeChat honours it.
    fn app_of_token(&self, token: &str) -> Option<&AppState> {
        self.apps
            .iter()
            .find(|state| !state.token.revoked && state.token.current() == token)
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
    /// A simulator for one mini-program, `appid` + `secret`, that refuses
    /// codes it did not issue.
    pub async fn start(appid: &str, secret: &str) -> std::io::Result<Self> {
        Self::start_with(appid, secret, UnknownCodes::Refuse).await
    }

    pub async fn start_with(
        appid: &str,
        secret: &str,
        unknown_codes: UnknownCodes,
    ) -> std::io::Result<Self> {
        Self::start_apps(&[SimApp::mini_program(appid, secret)], unknown_codes).await
    }

    /// A simulator for `apps` (at least one; the first is what the
    /// single-app calls mean).
    pub async fn start_apps(apps: &[SimApp], unknown_codes: UnknownCodes) -> std::io::Result<Self> {
        if apps.is_empty() {
            return Err(std::io::Error::other(
                "the simulator serves at least one app",
            ));
        }
        let state = Arc::new(Mutex::new(State {
            apps: apps
                .iter()
                .map(|app| AppState {
                    app: app.clone(),
                    token: TokenState::new(),
                })
                .collect(),
            unknown_codes,
            codes: HashMap::new(),
            oauth_codes: HashMap::new(),
            user_tokens: HashMap::new(),
            risk: HashMap::new(),
            risk_stall_next: 0,
            signing_in: "h5user".into(),
            oauth_calls: 0,
            userinfo_calls: 0,
            risk_calls: 0,
            used: HashSet::new(),
            busy_next: 0,
            stall_next: 0,
            calls: 0,
            secrets_seen: Vec::new(),
            latest_keys: HashMap::new(),
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
        let appid = self.state().first().app.appid.clone();
        self.issue_code_in(&appid, openid, unionid)
    }

    /// A wx.login code of the mini-program `appid`, for `openid` (its
    /// openid in that app) and `unionid`.
    pub fn issue_code_in(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<&str>,
    ) -> (String, Issued) {
        let issued = Issued::new(openid, unionid);
        let code = fresh("081");
        self.state()
            .codes
            .insert(code.clone(), (appid.to_owned(), issued.clone()));
        (code, issued)
    }

    /// Makes `code` a valid single-use code of the first app for `issued`
    /// (fixed codes in event files).
    pub fn accept_code(&self, code: &str, issued: Issued) {
        let mut s = self.state();
        let appid = s.first().app.appid.clone();
        s.codes.insert(code.to_owned(), (appid, issued));
    }

    /// A code WeChat's OAuth redirect (or the mobile SDK) hands the OAuth
    /// app `appid`'s page for `user`.
    pub fn issue_oauth_code(&self, appid: &str, user: OAuthUser) -> String {
        let code = fresh("oauth");
        self.state()
            .oauth_codes
            .insert(code.clone(), (appid.to_owned(), user));
        code
    }

    /// From now on the first app accepts only `secret`; the old one gets 40125.
    pub fn rotate_secret(&self, secret: &str) {
        self.state().first().app.secret = secret.into();
    }

    /// What `getuserriskrank` answers for `openid`: a rank (errcode 0), or an
    /// errcode (61010: the user has not opened the mini-program lately).
    pub fn set_risk(&self, openid: &str, errcode: i64, rank: i64) {
        self.state().risk.insert(openid.to_owned(), (errcode, rank));
    }

    /// Who signs in at the OAuth authorize page from now on: a code prefix
    /// (the same person as the mini-program codes `<person>-…`).
    pub fn sign_in_as(&self, person: &str) {
        self.state().signing_in = person.to_owned();
    }

    /// The next `n` getuserriskrank calls answer only after `faults::STALL`.
    pub fn stall_risk_next(&self, n: u32) {
        self.state().risk_stall_next = n;
    }

    /// (sns/oauth2/access_token, sns/userinfo, getuserriskrank) calls so far.
    pub fn oauth_and_risk_calls(&self) -> (u32, u32, u32) {
        let s = self.state();
        (s.oauth_calls, s.userinfo_calls, s.risk_calls)
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

    /// The first app's `stable_token` calls so far: (normal mode, forced refreshes).
    pub fn stable_token_calls(&self) -> (u32, u32) {
        let appid = self.state().first().app.appid.clone();
        self.stable_token_calls_of(&appid)
    }

    /// `appid`'s `stable_token` calls so far: (normal mode, forced refreshes).
    pub fn stable_token_calls_of(&self, appid: &str) -> (u32, u32) {
        let s = self.state();
        s.app(appid)
            .map_or((0, 0), |a| (a.token.normal_calls, a.token.forced_calls))
    }

    /// The access token WeChat currently honours for the first app.
    pub fn current_token(&self) -> String {
        self.state().first().token.current()
    }

    /// WeChat stops honouring the first app's token (40001) until a forced refresh.
    pub fn revoke_token(&self) {
        self.state().first().token.revoked = true;
    }

    /// Another system forced a refresh of the first app's token: the current
    /// one is refused from now on, and normal mode hands out the new one.
    pub fn replace_token_elsewhere(&self) {
        let mut s = self.state();
        let token = &mut s.first().token;
        token.generation += 1;
        token.revoked = false;
    }

    /// The `expires_in` stable_token answers from now on (every app).
    pub fn set_token_lifetime(&self, seconds: i64) {
        for app in &mut self.state().apps {
            app.token.expires_in = seconds;
        }
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
