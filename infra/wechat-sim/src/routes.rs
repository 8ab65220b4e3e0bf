//! The four WeChat endpoints the product calls, answering as WeChat does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::faults::{Fault, STALL, errcode};
use crate::server::{HttpResponse, Received, query_pairs, respond};
use crate::{DEFAULT_PHONE, Issued, State, UnknownCodes, lock, openid_for};

pub(crate) async fn answer(state: Arc<Mutex<State>>, request: Received) -> HttpResponse {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/sns/jscode2session") => jscode2session(&state, &request).await,
        ("POST", "/cgi-bin/stable_token") => stable_token(&state, &request),
        ("POST", "/wxa/business/getuserphonenumber") => phone_number(&state, &request).await,
        ("GET", "/wxa/checksession") => check_session(&state, &request),
        _ => respond(404, "text/html", "<html>404 Not Found</html>"),
    }
}

/// What a call does once the state has decided.
enum Outcome<T> {
    Answer(HttpResponse),
    Fault(Fault),
    Success(T),
}

async fn jscode2session(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params: HashMap<String, String> = query_pairs(&request.query).into_iter().collect();
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
    if appid != s.appid {
        return Outcome::Answer(errcode(40013));
    }
    if secret != s.secret {
        return Outcome::Answer(errcode(40125));
    }
    if grant_type != "authorization_code" {
        return Outcome::Answer(errcode(40002));
    }
    if s.busy_next > 0 {
        s.busy_next -= 1;
        return Outcome::Answer(errcode(-1));
    }
    let issued = match s.codes.get(code) {
        Some(issued) => issued.clone(),
        None => match (Fault::of(code), s.unknown_codes) {
            (Some(fault), _) => return Outcome::Fault(fault),
            (None, UnknownCodes::Refuse) => return Outcome::Answer(errcode(40029)),
            (None, UnknownCodes::AcceptOnce) => Issued::new(&openid_for(code), None),
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

fn stable_token(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return errcode(47001);
    };
    let mut s = lock(state);
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

/// Whether WeChat would honour the request's access_token parameter.
fn honoured_token(s: &State, request: &Received) -> bool {
    let token = query_pairs(&request.query)
        .into_iter()
        .find(|(name, _)| name == "access_token")
        .map(|(_, value)| value);
    !s.token.revoked && token.as_deref() == Some(s.token.current().as_str())
}

async fn phone_number(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    let code = body["code"].as_str().unwrap_or_default();
    let openid = body["openid"].as_str().unwrap_or_default();
    let outcome = {
        let mut s = lock(state);
        s.phone_calls += 1;
        if honoured_token(&s, request) {
            phone_for(&mut s, code, openid)
        } else {
            Outcome::Answer(errcode(40001))
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

/// The phone number and appid for a phone code, and whether to stall the answer
/// after spending the code (`stall_next`).
fn phone_for(s: &mut State, code: &str, openid: &str) -> Outcome<(String, String, bool)> {
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
    Outcome::Success((phone, s.appid.clone(), stall))
}

fn check_session(state: &Mutex<State>, request: &Received) -> HttpResponse {
    let params: HashMap<String, String> = query_pairs(&request.query).into_iter().collect();
    let mut s = lock(state);
    s.checksession_calls += 1;
    if !honoured_token(&s, request) {
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
