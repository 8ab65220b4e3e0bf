//! A fake WeChat API server on loopback: single-use codes for `jscode2session`,
//! and every failure the contract names on demand.
//!
//! Codes it issued answer with a session; a code used twice answers 40163; an
//! unknown code 40029. Reserved codes make it misbehave:
//! `errcode-<n>` answers errcode n; `slow` answers after 30 s; `html` answers an
//! HTML 502 page; `text-<n>` answers errcode n as text/plain; `notjson` answers
//! plain text; `noopenid` answers a success without openid; `huge` answers 10 MB. `fail_next` makes
//! the next calls answer -1 (or a transport drop) before behaving again.

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
    calls: u32,
    secrets_seen: Vec<String>,
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
    if request.path != "/sns/jscode2session" || request.method != "GET" {
        return respond(404, "text/html", "<html>404 Not Found</html>");
    }
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
            Ok(issued)
        } else {
            Err(code)
        }
    };
    match outcome {
        Ok(issued) => {
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
