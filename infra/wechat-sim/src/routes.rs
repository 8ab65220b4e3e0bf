//! The WeChat endpoints the product calls, answering as WeChat does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::faults::{Fault, STALL, errcode};
use crate::server::{HttpResponse, Received, query_pairs, respond};
use crate::{
    DEFAULT_PHONE, Issued, OAuthUser, SimKind, State, UnknownCodes, fresh, lock, openid_in,
    unionid_for,
};

pub(crate) async fn answer(state: Arc<Mutex<State>>, request: Received) -> HttpResponse {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/sns/jscode2session") => jscode2session(&state, &request).await,
        ("GET", "/sns/oauth2/access_token") => oauth_access_token(&state, &request).await,
        ("GET", "/sns/userinfo") => userinfo(&state, &request),
        ("POST", "/cgi-bin/stable_token") => stable_token(&state, &request),
        ("POST", "/wxa/business/getuserphonenumber") => phone_number(&state, &request).await,
        ("GET", "/wxa/checksession") => check_session(&state, &request),
        ("POST", "/wxa/getuserriskrank") => risk_rank(&state, &request).await,
        // open.weixin.qq.com's page, where an H5 page sends the user to sign in.
        ("GET", "/connect/oauth2/authorize") => authorize(&state, &request),
        _ => respond(404, "text/html", "<html>404 Not Found</html>"),
    }
}

/// What a call does once the state has decided.
enum Outcome<T> {
    Answer(HttpResponse),
    Fault(Fault),
    Success(T),
}

fn params(request: &Received) -> HashMap<String, String> {
    query_pairs(&request.query).into_iter().collect()
}

/// The app a code exchange names, checked as WeChat checks it: an appid of
/// the right kind (40013), its secret (40125), the grant type (40002).
fn refused_app(
    s: &State,
    kind: SimKind,
    appid: &str,
    secret: &str,
    grant_type: &str,
) -> Option<HttpResponse> {
    let Some(app) = s.app(appid).filter(|app| app.app.kind == kind) else {
        return Some(errcode(40013));
    };
    if secret != app.app.secret {
        return Some(errcode(40125));
    }
    (grant_type != "authorization_code").then(|| errcode(40002))
}

async fn jscode2session(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params = params(request);
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let code = param("js_code");
    let outcome = {
        let mut s = lock(state);
        s.calls += 1;
        s.secrets_seen.push(param("secret"));
        session_for(
            &mut s,
            &code,
            &param("appid"),
            &param("secret"),
            &param("grant_type"),
        )
    };
    match outcome {
        Outcome::Answer(response) => response,
        Outcome::Fault(fault) => fault.answer().await,
        Outcome::Success((issued, stall)) => {
            if stall {
                tokio::time::sleep(STALL).await;
            }
            let mut body = json!({"openid": issued.openid, "session_key": issued.session_key});
            if let Some(unionid) = issued.unionid {
                body["unionid"] = json!(unionid);
            }
            respond(200, "text/plain", body.to_string())
        }
    }
}

fn session_for(
    s: &mut State,
    code: &str,
    appid: &str,
    secret: &str,
    grant_type: &str,
) -> Outcome<(Issued, bool)> {
    if let Some(refused) = refused_app(s, SimKind::MiniProgram, appid, secret, grant_type) {
        return Outcome::Answer(refused);
    }
    if s.busy_next > 0 {
        s.busy_next -= 1;
        return Outcome::Answer(errcode(-1));
    }
    let issued = match s.codes.get(code) {
        // A code is its own app's: another app's code is no code here.
        Some((owner, _)) if owner != appid => return Outcome::Answer(errcode(40029)),
        Some((_, issued)) => issued.clone(),
        None => match (Fault::of(code), s.unknown_codes) {
            (Some(fault), _) => return Outcome::Fault(fault),
            (None, UnknownCodes::Refuse) => return Outcome::Answer(errcode(40029)),
            (None, UnknownCodes::AcceptOnce) => {
                let bound = s.app(appid).is_some_and(|app| app.app.bound);
                let unionid = bound.then(|| unionid_for(code));
                Issued::new(&openid_in(appid, code), unionid.as_deref())
            }
        },
    };
    if !s.used.insert(code.to_owned()) {
        return Outcome::Answer(errcode(40163));
    }
    s.latest_keys
        .insert(issued.openid.clone(), issued.session_key.clone());
    let stall = s.stall_next > 0;
    s.stall_next = s.stall_next.saturating_sub(1);
    Outcome::Success((issued, stall))
}

async fn oauth_access_token(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params = params(request);
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let (appid, code) = (param("appid"), param("code"));
    let outcome = {
        let mut s = lock(state);
        s.oauth_calls += 1;
        oauth_user_for(
            &mut s,
            &code,
            &appid,
            &param("secret"),
            &param("grant_type"),
        )
    };
    match outcome {
        Outcome::Answer(response) => response,
        Outcome::Fault(fault) => fault.answer().await,
        Outcome::Success((user, stall)) => {
            if stall {
                tokio::time::sleep(STALL).await;
            }
            let token = fresh("USER-");
            let mut body = json!({
                "access_token": token, "expires_in": 7200, "refresh_token": fresh("REFRESH-"),
                "openid": user.openid, "scope": user.scope,
            });
            if user.unionid_in_token {
                if let Some(unionid) = &user.unionid {
                    body["unionid"] = json!(unionid);
                }
            }
            lock(state).user_tokens.insert(token, user);
            respond(200, "application/json", body.to_string())
        }
    }
}

fn oauth_user_for(
    s: &mut State,
    code: &str,
    appid: &str,
    secret: &str,
    grant_type: &str,
) -> Outcome<(OAuthUser, bool)> {
    if let Some(refused) = refused_app(s, SimKind::OAuth, appid, secret, grant_type) {
        return Outcome::Answer(refused);
    }
    if s.busy_next > 0 {
        s.busy_next -= 1;
        return Outcome::Answer(errcode(-1));
    }
    let user = match s.oauth_codes.get(code) {
        Some((owner, _)) if owner != appid => return Outcome::Answer(errcode(40029)),
        Some((_, user)) => user.clone(),
        None => match (Fault::of(code), s.unknown_codes) {
            (Some(fault), _) => return Outcome::Fault(fault),
            (None, UnknownCodes::Refuse) => return Outcome::Answer(errcode(40029)),
            // As a page with scope=snsapi_userinfo gets it: the unionid, when
            // the app is bound, from sns/userinfo only.
            (None, UnknownCodes::AcceptOnce) => OAuthUser {
                openid: openid_in(appid, code),
                unionid: s
                    .app(appid)
                    .is_some_and(|app| app.app.bound)
                    .then(|| unionid_for(code)),
                scope: "snsapi_userinfo".into(),
                unionid_in_token: false,
            },
        },
    };
    if !s.used.insert(code.to_owned()) {
        return Outcome::Answer(errcode(40163));
    }
    let stall = s.stall_next > 0;
    s.stall_next = s.stall_next.saturating_sub(1);
    Outcome::Success((user, stall))
}

fn userinfo(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params = params(request);
    let mut s = lock(state);
    s.userinfo_calls += 1;
    let token = params.get("access_token").cloned().unwrap_or_default();
    let Some(user) = s.user_tokens.get(&token) else {
        return errcode(40001);
    };
    if params.get("openid") != Some(&user.openid) {
        return errcode(40003);
    }
    if !user
        .scope
        .split(',')
        .any(|scope| scope == "snsapi_userinfo")
    {
        return errcode(48001);
    }
    let mut body = json!({
        "openid": user.openid, "nickname": "微信用户", "sex": 0, "province": "", "city": "",
        "country": "", "headimgurl": "", "privilege": [],
    });
    if let Some(unionid) = &user.unionid {
        body["unionid"] = json!(unionid);
    }
    respond(200, "application/json", body.to_string())
}

fn stable_token(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return errcode(47001);
    };
    let mut s = lock(state);
    let appid = body["appid"].as_str().unwrap_or_default().to_owned();
    let Some(app) = s.app_mut(&appid) else {
        return errcode(40013);
    };
    if body["secret"] != json!(app.app.secret) {
        return errcode(40125);
    }
    if body["grant_type"] != "client_credential" {
        return errcode(40002);
    }
    let token = &mut app.token;
    if body["force_refresh"] == json!(true) {
        token.forced_calls += 1;
        token.generation += 1;
        token.revoked = false;
    } else {
        token.normal_calls += 1;
    }
    let answer = json!({"access_token": token.current(), "expires_in": token.expires_in});
    respond(200, "application/json", answer.to_string())
}

/// The app whose access token the request carries, if WeChat honours it.
fn honoured_app(s: &State, request: &Received) -> Option<String> {
    let token = query_pairs(&request.query)
        .into_iter()
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value)?;
    s.app_of_token(&token).map(|app| app.app.appid.clone())
}

async fn phone_number(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let code = body["code"].as_str().unwrap_or_default();
    let openid = body["openid"].as_str().unwrap_or_default();
    let outcome = {
        let mut s = lock(state);
        s.phone_calls += 1;
        match honoured_app(&s, request) {
            Some(appid) => phone_for(&mut s, code, openid, appid),
            None => Outcome::Answer(errcode(40001)),
        }
    };
    match outcome {
        Outcome::Answer(response) => response,
        Outcome::Fault(fault) => fault.answer().await,
        Outcome::Success((phone, appid, stall)) => {
            if stall {
                tokio::time::sleep(STALL).await;
            }
            let answer = json!({"errcode": 0, "errmsg": "ok", "phone_info": {
                "phoneNumber": phone, "purePhoneNumber": phone, "countryCode": 86,
                "watermark": {"timestamp": now(), "appid": appid},
            }});
            respond(200, "application/json", answer.to_string())
        }
    }
}

/// The phone number for a phone code, the appid of the token that asked
/// (its watermark's), and whether to stall the answer after spending the
/// code (`stall_next`).
fn phone_for(
    s: &mut State,
    code: &str,
    openid: &str,
    appid: String,
) -> Outcome<(String, String, bool)> {
    if s.busy_next > 0 {
        s.busy_next -= 1;
        return Outcome::Answer(errcode(-1));
    }
    let phone = match s.phone_codes.get(code) {
        Some((owner, _)) if owner != openid => return Outcome::Answer(errcode(40029)),
        Some((_, phone)) => phone.clone(),
        None => match (Fault::of(code), s.unknown_codes) {
            (Some(fault), _) => return Outcome::Fault(fault),
            (None, UnknownCodes::Refuse) => return Outcome::Answer(errcode(40029)),
            (None, UnknownCodes::AcceptOnce) => code
                .strip_prefix("phone-")
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or(DEFAULT_PHONE)
                .to_owned(),
        },
    };
    if !s.used_phone_codes.insert(code.to_owned()) {
        return Outcome::Answer(errcode(40029));
    }
    let stall = s.stall_next > 0;
    s.stall_next = s.stall_next.saturating_sub(1);
    Outcome::Success((phone, appid, stall))
}

fn check_session(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params = params(request);
    let mut s = lock(state);
    s.checksession_calls += 1;
    if honoured_app(&s, request).is_none() {
        return errcode(40001);
    }
    let openid = params.get("openid").cloned().unwrap_or_default();
    let Some(key) = s.latest_keys.get(&openid) else {
        return errcode(87009);
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        return errcode(87009);
    };
    mac.update(b"");
    let expected = hex::encode(mac.finalize().into_bytes());
    let method = params.get("sig_method").map(String::as_str);
    if method != Some("hmac_sha256") || params.get("signature") != Some(&expected) {
        return errcode(87009);
    }
    respond(200, "application/json", r#"{"errcode":0,"errmsg":"ok"}"#)
}

async fn risk_rank(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let (answer, stall) = {
        let mut s = lock(state);
        s.risk_calls += 1;
        let stall = s.risk_stall_next > 0;
        s.risk_stall_next = s.risk_stall_next.saturating_sub(1);
        let answer = match honoured_app(&s, request) {
            None => errcode(40001),
            Some(appid) if body["appid"] != json!(appid) => errcode(43104),
            Some(_) if body["scene"] != json!(0) || !body["client_ip"].is_string() => {
                errcode(40097)
            }
            Some(_) => {
                let openid = body["openid"].as_str().unwrap_or_default();
                match s.risk.get(openid).copied().unwrap_or((0, 0)) {
                    (0, rank) => respond(
                        200,
                        "application/json",
                        json!({"errcode": 0, "errmsg": "getuserriskrank succ", "risk_rank": rank, "unoin_id": 1})
                            .to_string(),
                    ),
                    (code, _) => errcode(code),
                }
            }
        };
        (answer, stall)
    };
    if stall {
        tokio::time::sleep(STALL).await;
    }
    answer
}

/// WeChat's OAuth authorize page, as a user who agrees at once: back to
/// `redirect_uri` with a fresh code of the app and the page's `state`. The
/// user is the simulator's signing-in person (`sign_in_as`).
fn authorize(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params = params(request);
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let (appid, redirect_uri, scope) = (param("appid"), param("redirect_uri"), param("scope"));
    let mut s = lock(state);
    let Some(app) = s.app(&appid).filter(|app| app.app.kind == SimKind::OAuth) else {
        return respond(
            400,
            "text/html",
            "<html>appid is not an OAuth app's (10003)</html>",
        );
    };
    let known_scope = ["snsapi_base", "snsapi_userinfo"].contains(&scope.as_str());
    if param("response_type") != "code" || !known_scope || redirect_uri.is_empty() {
        return respond(
            400,
            "text/html",
            "<html>bad authorize request (10005)</html>",
        );
    }
    let person = s.signing_in.clone();
    let user = OAuthUser {
        openid: openid_in(&appid, &person),
        unionid: app.app.bound.then(|| unionid_for(&person)),
        scope,
        unionid_in_token: false,
    };
    let code = fresh("oauth");
    s.oauth_codes.insert(code.clone(), (appid, user));
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &param("state"))
        .finish();
    let mut response = respond(302, "text/html", "");
    if let Ok(value) =
        hyper::header::HeaderValue::from_str(&format!("{redirect_uri}{separator}{location}"))
    {
        response
            .headers_mut()
            .insert(hyper::header::LOCATION, value);
    }
    response
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
