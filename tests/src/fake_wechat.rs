//! A fake WeChat API server on loopback: single-use codes for `jscode2session`,
//! and every failure the contract names on demand.
//!
//! Codes it issued answer with a session; a code used twice answers 40163; an
//! unknown code 40029. Reserved codes make it misbehave:
//! `errcode-<n>` answers errcode n; `slow` answers after 30 s; `html` answers an
//! HTML 502 page; `text-<n>` answers errcode n as text/plain; `notjson` answers
//! plain text; `noopenid` answers a success without openid; `huge` answers 10 MB. `busy_next` makes
//! the next calls answer -1 before behaving again.
//!
//! The access-token APIs behave as WeChat documents them: `stable_token` hands
//! out one current token (normal mode) until a forced refresh replaces it;
//! `revoke_token` makes the current token refused (40001) without issuing a new
//! one. `getuserphonenumber` takes single-use phone codes from `issue_phone_code`
//! (reserved codes as above); `checksession` checks the HMAC-SHA256 signature
//! against the session_key it last issued for the openid (87009 otherwise).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::server::{HttpResponse, Received, query_pairs, respond, serve_counting};

#[derive(Debug, Clone)]
pub struct Issued {
    pub openid: String,
    pub unionid: Option<String>,
    /// base64 of the 16 key bytes, as WeChat sends it.
    pub session_key: String,
    pub key_bytes: [u8; 16],
}

#[derive(Default)]
struct State {
    appid: String,
    secret: String,
    codes: HashMap<String, Issued>,
    used: HashSet<String>,
    busy_next: u32,
    stall_next: u32,
    calls: u32,
    secrets_seen: Vec<String>,
    /// The newest session_key per openid: WeChat keeps only that one valid.
    latest_keys: HashMap<String, String>,
    token: TokenState,
    phone_codes: HashMap<String, (String, String)>,
    used_phone_codes: HashSet<String>,
    phone_calls: u32,
    checksession_calls: u32,
}

#[derive(Default)]
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

#[derive(Clone)]
pub struct FakeWeChat {
    pub base: String,
    state: Arc<Mutex<State>>,
    connections: Arc<std::sync::atomic::AtomicU64>,
}

impl FakeWeChat {
    pub async fn start(appid: &str, secret: &str) -> Self {
        let state = Arc::new(Mutex::new(State {
            appid: appid.into(),
            secret: secret.into(),
            token: TokenState {
                nonce: crate::unique("t"),
                expires_in: 7200,
                ..TokenState::default()
            },
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let (addr, connections) =
            serve_counting(move |request| answer(Arc::clone(&shared), request)).await;
        Self {
            base: format!("http://{addr}"),
            state,
            connections,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake wechat state")
    }

    /// A code as `wx.login` would hand it to the mini-program, for a new user.
    pub fn issue_code(&self) -> (String, Issued) {
        self.issue_code_for(&crate::unique("o").replace('-', ""), None)
    }

    pub fn issue_code_for(&self, openid: &str, unionid: Option<&str>) -> (String, Issued) {
        let mut key_bytes = [0u8; 16];
        getrandom::fill(&mut key_bytes).expect("random");
        let issued = Issued {
            openid: openid.into(),
            unionid: unionid.map(Into::into),
            session_key: STANDARD.encode(key_bytes),
            key_bytes,
        };
        let code = crate::unique("081").replace('-', "");
        self.state().codes.insert(code.clone(), issued.clone());
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

    /// The next `n` calls answer errcode -1 (system busy).
    pub fn busy_next(&self, n: u32) {
        self.state().busy_next = n;
    }

    /// The next `n` logins with a valid code use the code up, then answer only
    /// after 30 s: the caller's attempt times out though WeChat spent the code.
    pub fn stall_next(&self, n: u32) {
        self.state().stall_next = n;
    }

    pub fn calls(&self) -> u32 {
        self.state().calls
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

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
        let code = crate::unique("phone").replace('-', "");
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

fn errcode(code: i64) -> HttpResponse {
    // WeChat labels its JSON text/plain.
    respond(
        200,
        "text/plain",
        json!({"errcode": code, "errmsg": format!("fake errcode {code}, rid: 0")}).to_string(),
    )
}

async fn answer(state: Arc<Mutex<State>>, request: Received) -> HttpResponse {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/sns/jscode2session") => jscode2session(state, request).await,
        ("POST", "/cgi-bin/stable_token") => stable_token(&state, &request),
        ("POST", "/wxa/business/getuserphonenumber") => phone_number(state, request).await,
        ("GET", "/wxa/checksession") => check_session(&state, &request),
        _ => respond(404, "text/html", "<html>404 Not Found</html>"),
    }
}

fn stable_token(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
        return errcode(47001);
    };
    let mut s = state.lock().expect("fake wechat state");
    if body["appid"] != json!(s.appid) {
        return errcode(40013);
    }
    if body["secret"] != json!(s.secret) {
        return errcode(40125);
    }
    if body["grant_type"] != "client_credential" {
        return errcode(40002);
    }
    if body["force_refresh"] == json!(true) {
        s.token.forced_calls += 1;
        s.token.generation += 1;
        s.token.revoked = false;
    } else {
        s.token.normal_calls += 1;
    }
    let answer = json!({"access_token": s.token.current(), "expires_in": s.token.expires_in});
    respond(200, "application/json", answer.to_string())
}

/// The access_token parameter, if WeChat would honour it.
fn honoured_token(s: &State, request: &Received) -> bool {
    let token = query_pairs(&request.query)
        .into_iter()
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value);
    !s.token.revoked && token.as_deref() == Some(s.token.current().as_str())
}

async fn phone_number(state: Arc<Mutex<State>>, request: Received) -> HttpResponse {
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    let outcome = {
        let mut s = state.lock().expect("fake wechat state");
        s.phone_calls += 1;
        if !honoured_token(&s, &request) {
            return errcode(40001);
        }
        if s.busy_next > 0 {
            s.busy_next -= 1;
            return errcode(-1);
        }
        match s.phone_codes.get(&code).cloned() {
            Some(_) if !s.used_phone_codes.insert(code.clone()) => return errcode(40029),
            Some((openid, _)) if body["openid"] != json!(openid) => return errcode(40029),
            Some((_, phone)) => Ok((phone, s.appid.clone())),
            None => Err(code),
        }
    };
    match outcome {
        Ok((phone, appid)) => {
            let answer = json!({"errcode": 0, "errmsg": "ok", "phone_info": {
                "phoneNumber": phone, "purePhoneNumber": phone, "countryCode": 86,
                "watermark": {"timestamp": wxauth::session::epoch_seconds(), "appid": appid},
            }});
            respond(200, "application/json", answer.to_string())
        }
        Err(code) => reserved(&code).await,
    }
}

fn check_session(state: &Mutex<State>, request: &Received) -> HttpResponse {
    use hmac::{KeyInit, Mac};
    let params: HashMap<String, String> = query_pairs(&request.query).into_iter().collect();
    let mut s = state.lock().expect("fake wechat state");
    s.checksession_calls += 1;
    if !honoured_token(&s, request) {
        return errcode(40001);
    }
    let openid = params.get("openid").cloned().unwrap_or_default();
    let Some(key) = s.latest_keys.get(&openid) else {
        return errcode(87009);
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key");
    mac.update(b"");
    let expected = hex::encode(mac.finalize().into_bytes());
    let method = params.get("sig_method").map(String::as_str);
    if method != Some("hmac_sha256") || params.get("signature") != Some(&expected) {
        return errcode(87009);
    }
    respond(200, "application/json", r#"{"errcode":0,"errmsg":"ok"}"#)
}

async fn jscode2session(state: Arc<Mutex<State>>, request: Received) -> HttpResponse {
    let params: HashMap<String, String> = query_pairs(&request.query).into_iter().collect();
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let code = param("js_code");
    let outcome = {
        let mut s = state.lock().expect("fake wechat state");
        s.calls += 1;
        s.secrets_seen.push(param("secret"));
        if param("appid") != s.appid {
            return errcode(40013);
        }
        if param("secret") != s.secret {
            return errcode(40125);
        }
        if param("grant_type") != "authorization_code" {
            return errcode(40002);
        }
        if s.busy_next > 0 {
            s.busy_next -= 1;
            return errcode(-1);
        }
        if let Some(issued) = s.codes.get(&code).cloned() {
            if !s.used.insert(code.clone()) {
                return errcode(40163);
            }
            s.latest_keys
                .insert(issued.openid.clone(), issued.session_key.clone());
            let stall = s.stall_next > 0;
            s.stall_next = s.stall_next.saturating_sub(1);
            Ok((issued, stall))
        } else {
            Err(code)
        }
    };
    match outcome {
        Ok((issued, stall)) => {
            if stall {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            let mut body = json!({"openid": issued.openid, "session_key": issued.session_key});
            if let Some(unionid) = issued.unionid {
                body["unionid"] = json!(unionid);
            }
            respond(200, "text/plain", body.to_string())
        }
        Err(code) => reserved(&code).await,
    }
}

async fn reserved(code: &str) -> HttpResponse {
    if let Some(n) = code.strip_prefix("errcode-").and_then(|n| n.parse().ok()) {
        return errcode(n);
    }
    if let Some(n) = code
        .strip_prefix("text-")
        .and_then(|n| n.parse::<i64>().ok())
    {
        return respond(
            200,
            "text/plain",
            format!("{{\"errcode\":{n},\"errmsg\":\"x\"}}"),
        );
    }
    match code {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            errcode(-1)
        }
        "html" => respond(
            502,
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        ),
        "notjson" => respond(200, "text/plain", "ok"),
        // 10 MB: the client must refuse it without reading it whole.
        "huge" => respond(200, "application/json", vec![b' '; 10 * 1024 * 1024]),
        "noopenid" => respond(
            200,
            "application/json",
            r#"{"session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}"#,
        ),
        _ => errcode(40029),
    }
}
