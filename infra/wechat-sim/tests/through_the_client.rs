//! The simulator's rules, seen through the product's own WeChat client: what
//! the local server runs and what every test's fake answers.

#![allow(clippy::unwrap_used, reason = "set-up that fails is a failed test")]

use std::time::Duration;

use wechat_sim::{DEFAULT_PHONE, SimApp, UnknownCodes, WeChatSim};
use wxauth::domain::crypto::checksession_signature;
use wxauth::domain::redact::{AccessToken, AppSecret, SessionKey};
use wxauth::domain::wechat::{SessionKeyStatus, WeChatError};
use wxauth::ports::wechat::WeChatApi;
use wxauth::wechat::HttpWeChat;

const APPID: &str = "wx0000000000000000";
const SECRET: &str = "simulated";
const T: Duration = Duration::from_secs(2);

/// A simulator in `mode`, and the product's client pointed at it.
async fn started(mode: UnknownCodes) -> (WeChatSim, HttpWeChat, AppSecret) {
    let sim = WeChatSim::start_with(APPID, SECRET, mode).await.unwrap();
    let client = HttpWeChat::new(&sim.base, T).unwrap();
    (sim, client, AppSecret::new(SECRET))
}

/// As the local server runs it.
async fn local() -> (WeChatSim, HttpWeChat, AppSecret) {
    started(UnknownCodes::AcceptOnce).await
}

#[tokio::test]
async fn any_code_once_with_stable_openids_and_fresh_keys() {
    let (_sim, wechat, secret) = local().await;
    let login = |code: &'static str| wechat.jscode2session(APPID, &secret, code, T);
    let a1 = login("alice-1").await.unwrap();
    let a2 = login("alice-2").await.unwrap();
    let b = login("bob").await.unwrap();
    assert_eq!(a1.openid, a2.openid);
    assert_ne!(a1.openid, b.openid);
    assert_ne!(a1.session_key, a2.session_key);
    assert_eq!(login("alice-1").await, Err(WeChatError::InvalidCode(40163)));
}

#[tokio::test]
async fn issued_codes_only_when_unknown_codes_are_refused() {
    let (sim, wechat, secret) = started(UnknownCodes::Refuse).await;
    let (code, issued) = sim.issue_code_for("oUser", Some("uUnion"));
    let session = wechat
        .jscode2session(APPID, &secret, &code, T)
        .await
        .unwrap();
    assert_eq!(session.openid, "oUser");
    assert_eq!(session.unionid.as_deref(), Some("uUnion"));
    assert_eq!(session.session_key.expose(), issued.session_key);
    assert_eq!(
        wechat.jscode2session(APPID, &secret, "alice-1", T).await,
        Err(WeChatError::InvalidCode(40029))
    );
    assert_eq!(
        wechat
            .jscode2session(APPID, &AppSecret::new("old"), &sim.issue_code().0, T)
            .await,
        Err(WeChatError::BadCredential(40125))
    );
    assert_eq!(sim.calls(), 3);
    assert_eq!(sim.secrets_seen(), [SECRET, SECRET, "old"]);
}

#[tokio::test]
async fn reserved_codes_misbehave_in_either_mode() {
    for mode in [UnknownCodes::Refuse, UnknownCodes::AcceptOnce] {
        let (_sim, wechat, secret) = started(mode).await;
        for (code, want) in [
            ("errcode-40029", WeChatError::InvalidCode(40029)),
            ("errcode-40163", WeChatError::InvalidCode(40163)),
            ("errcode-40226", WeChatError::Blocked),
            ("errcode-45011", WeChatError::RateLimited),
            ("text-40029", WeChatError::InvalidCode(40029)),
        ] {
            assert_eq!(
                wechat.jscode2session(APPID, &secret, code, T).await,
                Err(want),
                "{mode:?} {code}"
            );
        }
        for code in ["html", "notjson", "noopenid", "huge"] {
            let answer = wechat.jscode2session(APPID, &secret, code, T).await;
            assert!(
                matches!(answer, Err(WeChatError::Malformed(_))),
                "{mode:?} {code}: {answer:?}"
            );
        }
    }
}

#[tokio::test]
async fn phone_codes_and_session_key_checks() {
    let (sim, wechat, secret) = local().await;
    let token = wechat
        .stable_token(APPID, &secret, false, T)
        .await
        .unwrap()
        .token;
    assert_eq!(token.expose(), sim.current_token());
    let phone = |code: &'static str| wechat.get_phone_number(&token, code, "o", T);
    let numbered = phone("phone-13900139000").await.unwrap();
    assert_eq!(numbered.phone.phone_number, "13900139000");
    assert_eq!(numbered.watermark_appid.as_deref(), Some(APPID));
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
        wechat
            .get_phone_number(&AccessToken::new("stale"), "x", "o", T)
            .await,
        Err(WeChatError::TokenRejected(40001))
    );

    let first = wechat
        .jscode2session(APPID, &secret, "carol-1", T)
        .await
        .unwrap();
    let check = |key: &SessionKey| {
        let signature = checksession_signature(key);
        let (openid, token, wechat) = (first.openid.clone(), token.clone(), &wechat);
        async move {
            wechat
                .check_session_key(&token, &openid, &signature, T)
                .await
        }
    };
    assert_eq!(check(&first.session_key).await, Ok(SessionKeyStatus::Valid));
    let second = wechat
        .jscode2session(APPID, &secret, "carol-2", T)
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
    assert_eq!(sim.user_api_calls(), (5, 3));
}

#[tokio::test]
async fn issued_phone_codes_belong_to_one_user() {
    let (sim, wechat, _) = started(UnknownCodes::Refuse).await;
    let token = AccessToken::new(sim.current_token());
    let code = sim.issue_phone_code("oOwner", "13700137000");
    assert_eq!(
        wechat.get_phone_number(&token, &code, "oOther", T).await,
        Err(WeChatError::InvalidCode(40029))
    );
    let info = wechat
        .get_phone_number(&token, &code, "oOwner", T)
        .await
        .unwrap();
    assert_eq!(info.phone.pure_phone_number, "13700137000");
    assert_eq!(
        wechat
            .get_phone_number(&token, "phone-1", "oOwner", T)
            .await,
        Err(WeChatError::InvalidCode(40029))
    );
}

#[tokio::test]
async fn tokens_change_only_by_a_forced_refresh_or_elsewhere() {
    let (sim, wechat, secret) = local().await;
    let fetch = |force| wechat.stable_token(APPID, &secret, force, T);
    let first = fetch(false).await.unwrap().token;
    assert_eq!(fetch(false).await.unwrap().token, first);
    let forced = fetch(true).await.unwrap().token;
    assert_ne!(forced, first);
    sim.replace_token_elsewhere();
    let replaced = fetch(false).await.unwrap().token;
    assert_ne!(replaced, forced);
    assert_eq!(sim.stable_token_calls(), (3, 1));
    sim.revoke_token();
    assert_eq!(
        wechat.get_phone_number(&replaced, "x", "o", T).await,
        Err(WeChatError::TokenRejected(40001))
    );
}

/// The local server's apps: two mini-programs and an `oauth` app, bound.
async fn several() -> (WeChatSim, HttpWeChat) {
    let apps = [
        SimApp::mini_program(APPID, SECRET).bound(),
        SimApp::mini_program(SECOND, SECRET).bound(),
        SimApp::oauth(WEB, SECRET).bound(),
    ];
    let sim = WeChatSim::start_apps(&apps, UnknownCodes::AcceptOnce)
        .await
        .unwrap();
    let client = HttpWeChat::new(&sim.base, T).unwrap();
    (sim, client)
}

const SECOND: &str = "wx0000000000000001";
const WEB: &str = "wx0000000000000002";

#[tokio::test]
async fn one_person_has_an_openid_per_app_and_one_unionid() {
    let (sim, wechat) = several().await;
    let secret = AppSecret::new(SECRET);
    let a = wechat
        .jscode2session(APPID, &secret, "dan-1", T)
        .await
        .unwrap();
    let b = wechat
        .jscode2session(SECOND, &secret, "dan-2", T)
        .await
        .unwrap();
    assert_ne!(a.openid, b.openid);
    assert_eq!(
        (a.unionid.as_deref(), b.unionid.is_some()),
        (b.unionid.as_deref(), true)
    );
    // An app's code is its own; an OAuth app takes no wx.login code.
    let (code, _) = sim.issue_code_in(APPID, "oA", None);
    assert_eq!(
        wechat.jscode2session(SECOND, &secret, &code, T).await,
        Err(WeChatError::InvalidCode(40029))
    );
    assert_eq!(
        wechat.jscode2session(WEB, &secret, "dan-3", T).await,
        Err(WeChatError::Other(40013))
    );

    // OAuth: the token answer leaves the unionid to sns/userinfo.
    let grant = wechat
        .oauth_access_token(WEB, &secret, "dan-4", T)
        .await
        .unwrap();
    assert!(grant.unionid.is_none() && grant.allows_userinfo());
    let unionid = wechat
        .oauth_unionid(&grant.access_token, &grant.openid, T)
        .await
        .unwrap();
    assert_eq!(unionid, a.unionid);
    assert_eq!(
        wechat.oauth_access_token(WEB, &secret, "dan-4", T).await,
        Err(WeChatError::InvalidCode(40163))
    );
    assert_eq!(
        wechat
            .oauth_unionid(&AccessToken::new("forged"), &grant.openid, T)
            .await,
        Err(WeChatError::TokenRejected(40001))
    );
    assert_eq!(sim.oauth_and_risk_calls(), (2, 2, 0));
}

#[tokio::test]
async fn each_app_has_its_own_access_token_and_risk_ranks() {
    let (sim, wechat) = several().await;
    let secret = AppSecret::new(SECRET);
    let first = wechat
        .stable_token(APPID, &secret, false, T)
        .await
        .unwrap()
        .token;
    let second = wechat
        .stable_token(SECOND, &secret, false, T)
        .await
        .unwrap()
        .token;
    assert_ne!(first, second);
    // A phone code's watermark is the asking token's app.
    let info = wechat
        .get_phone_number(&second, "phone-13700137000", "o", T)
        .await
        .unwrap();
    assert_eq!(info.watermark_appid.as_deref(), Some(SECOND));

    let rank = |token: AccessToken, appid: &'static str, openid: &'static str| {
        let wechat = &wechat;
        async move {
            wechat
                .user_risk_rank(&token, appid, openid, "203.0.113.7", T)
                .await
        }
    };
    assert_eq!(
        rank(first.clone(), APPID, "oNew").await.map(|r| r.get()),
        Ok(0)
    );
    sim.set_risk("oRisky", 0, 4);
    sim.set_risk("oAway", 61010, 0);
    assert_eq!(
        rank(first.clone(), APPID, "oRisky").await.map(|r| r.get()),
        Ok(4)
    );
    assert_eq!(
        rank(first.clone(), APPID, "oAway").await,
        Err(WeChatError::Other(61010))
    );
    // The token must be the named app's.
    assert_eq!(
        rank(second, APPID, "oNew").await,
        Err(WeChatError::Other(43104))
    );
    assert_eq!(sim.oauth_and_risk_calls().2, 4);
}
