//! WeChat's answers: JSON whatever the Content-Type, an errcode that may be
//! absent on success, and the fields each call must carry.

use serde_json::Value;

use crate::domain::phone::PhoneNumber;
use crate::domain::redact::{AccessToken, SessionKey};
use crate::domain::wechat::{
    FetchedToken, OAuthGrant, PhoneInfo, RiskRank, SessionKeyStatus, WeChatError, WxSession,
};

/// A WeChat answer as a JSON object with its errcode (0 when absent).
fn parse_answer(body: &[u8]) -> Result<(serde_json::Map<String, Value>, i64), WeChatError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| WeChatError::Malformed("not JSON"))?;
    let Value::Object(object) = value else {
        return Err(WeChatError::Malformed("not a JSON object"));
    };
    let errcode = match object.get("errcode") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or(WeChatError::Malformed("errcode is not an integer"))?,
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| WeChatError::Malformed("errcode is not an integer"))?,
        Some(_) => return Err(WeChatError::Malformed("errcode is not an integer")),
    };
    Ok((object, errcode))
}

fn non_empty_str(object: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    object
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Parses a `stable_token` answer: `{"access_token": .., "expires_in": ..}`.
/// Here 40001 and 40125 are about the appsecret, as for jscode2session.
pub fn parse_stable_token(body: &[u8]) -> Result<FetchedToken, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_errcode(errcode));
    }
    let token =
        non_empty_str(&object, "access_token").ok_or(WeChatError::Malformed("no access_token"))?;
    let expires_in = object
        .get("expires_in")
        .and_then(Value::as_i64)
        .filter(|&seconds| seconds > 0)
        .ok_or(WeChatError::Malformed("no positive expires_in"))?;
    Ok(FetchedToken {
        token: AccessToken::new(token),
        expires_in,
    })
}

/// Parses a `getuserphonenumber` answer. Its `countryCode` is a number.
pub fn parse_phone_number(body: &[u8]) -> Result<PhoneInfo, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_token_call_errcode(errcode));
    }
    let info = object
        .get("phone_info")
        .and_then(Value::as_object)
        .ok_or(WeChatError::Malformed("no phone_info"))?;
    Ok(PhoneInfo {
        phone: PhoneNumber::from_fields(info).ok_or(WeChatError::Malformed("no phone fields"))?,
        watermark_appid: info
            .get("watermark")
            .and_then(|w| w.get("appid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Parses a `checksession` answer. Only errcode 0 is a valid key and only 87009
/// an invalid one: an HTTP 200 alone proves nothing.
pub fn parse_check_session(body: &[u8]) -> Result<SessionKeyStatus, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    match errcode {
        0 if object.contains_key("errcode") => Ok(SessionKeyStatus::Valid),
        0 => Err(WeChatError::Malformed("no errcode")),
        87009 => Ok(SessionKeyStatus::Invalid),
        other => Err(WeChatError::from_token_call_errcode(other)),
    }
}

/// Parses a `jscode2session` answer. It is JSON whatever the Content-Type says,
/// and `errcode` is absent on success.
pub fn parse_jscode2session(body: &[u8]) -> Result<WxSession, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_errcode(errcode));
    }
    let text = |name: &str| non_empty_str(&object, name);
    Ok(WxSession {
        openid: text("openid").ok_or(WeChatError::Malformed("no openid"))?,
        session_key: SessionKey::new(
            text("session_key").ok_or(WeChatError::Malformed("no session_key"))?,
        ),
        unionid: text("unionid"),
    })
}

/// Parses a `sns/oauth2/access_token` answer: an `oauth` app's code spent.
/// Its errcodes mean what jscode2session's do (40029, 40163, 40125, ...).
pub fn parse_oauth_access_token(body: &[u8]) -> Result<OAuthGrant, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_errcode(errcode));
    }
    let text = |name: &str| non_empty_str(&object, name);
    Ok(OAuthGrant {
        openid: text("openid").ok_or(WeChatError::Malformed("no openid"))?,
        unionid: text("unionid"),
        scope: text("scope").unwrap_or_default(),
        access_token: AccessToken::new(
            text("access_token").ok_or(WeChatError::Malformed("no access_token"))?,
        ),
    })
}

/// Parses a `sns/userinfo` answer for its unionid; the rest of the profile
/// (nickname, picture) is read by nobody. The call is authorised by the
/// user's token: 40001, 40014 and 42001 say it is bad.
pub fn parse_oauth_unionid(body: &[u8]) -> Result<Option<String>, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_token_call_errcode(errcode));
    }
    if non_empty_str(&object, "openid").is_none() {
        return Err(WeChatError::Malformed("no openid"));
    }
    Ok(non_empty_str(&object, "unionid"))
}

/// Parses a `getuserriskrank` answer: `risk_rank` from 0 to 4.
pub fn parse_risk_rank(body: &[u8]) -> Result<RiskRank, WeChatError> {
    let (object, errcode) = parse_answer(body)?;
    if errcode != 0 {
        return Err(WeChatError::from_token_call_errcode(errcode));
    }
    object
        .get("risk_rank")
        .and_then(Value::as_i64)
        .and_then(RiskRank::new)
        .ok_or(WeChatError::Malformed("no risk_rank from 0 to 4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_without_errcode() {
        let session =
            parse_jscode2session(br#"{"openid":"o1","session_key":"k==","unionid":"u1"}"#).unwrap();
        assert_eq!(session.openid, "o1");
        assert_eq!(session.session_key.expose(), "k==");
        assert_eq!(session.unionid.as_deref(), Some("u1"));
        let session =
            parse_jscode2session(br#"{"errcode":0,"openid":"o1","session_key":"k"}"#).unwrap();
        assert_eq!(session.unionid, None);
    }

    #[test]
    fn stable_token_answers() {
        let token = parse_stable_token(br#"{"access_token":"AT","expires_in":7200}"#).unwrap();
        assert_eq!(token.token.expose(), "AT");
        assert_eq!(token.expires_in, 7200);
        assert_eq!(
            parse_stable_token(br#"{"errcode":40125,"errmsg":"invalid appsecret"}"#),
            Err(WeChatError::BadCredential(40125))
        );
        assert_eq!(
            parse_stable_token(br#"{"errcode":45009}"#),
            Err(WeChatError::Other(45009))
        );
        assert_eq!(
            parse_stable_token(br#"{"access_token":"AT","expires_in":0}"#),
            Err(WeChatError::Malformed("no positive expires_in"))
        );
        assert_eq!(
            parse_stable_token(br#"{"expires_in":7200}"#),
            Err(WeChatError::Malformed("no access_token"))
        );
    }

    #[test]
    fn phone_number_answers() {
        let info = parse_phone_number(
            br#"{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+86 13800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":1637744274,"appid":"wxapp"}}}"#,
        )
        .unwrap();
        assert_eq!(info.phone.phone_number, "+86 13800138000");
        assert_eq!(info.phone.pure_phone_number, "13800138000");
        assert_eq!(info.phone.country_code, "86");
        assert_eq!(info.watermark_appid.as_deref(), Some("wxapp"));
        for (body, want) in [
            (
                &br#"{"errcode":40029}"#[..],
                WeChatError::InvalidCode(40029),
            ),
            (br#"{"errcode":40001}"#, WeChatError::TokenRejected(40001)),
            (br#"{"errcode":40014}"#, WeChatError::TokenRejected(40014)),
            (br#"{"errcode":42001}"#, WeChatError::TokenRejected(42001)),
            (br#"{"errcode":45011}"#, WeChatError::RateLimited),
            (br#"{"errcode":-1}"#, WeChatError::Busy),
            (br#"{"errcode":40013}"#, WeChatError::Other(40013)),
            (br#"{"errcode":0}"#, WeChatError::Malformed("no phone_info")),
            (
                br#"{"phone_info":{"phoneNumber":"1"}}"#,
                WeChatError::Malformed("no phone fields"),
            ),
        ] {
            assert_eq!(
                parse_phone_number(body),
                Err(want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn check_session_answers() {
        assert_eq!(
            parse_check_session(br#"{"errcode":0,"errmsg":"ok"}"#),
            Ok(SessionKeyStatus::Valid)
        );
        assert_eq!(
            parse_check_session(br#"{"errcode":87009,"errmsg":"invalid signature"}"#),
            Ok(SessionKeyStatus::Invalid)
        );
        // An HTTP 200 without an errcode is not a yes.
        assert_eq!(
            parse_check_session(b"{}"),
            Err(WeChatError::Malformed("no errcode"))
        );
        assert_eq!(
            parse_check_session(br#"{"errcode":42001}"#),
            Err(WeChatError::TokenRejected(42001))
        );
        assert_eq!(
            parse_check_session(b"<html>"),
            Err(WeChatError::Malformed("not JSON"))
        );
    }

    #[test]
    fn oauth_answers() {
        let grant = parse_oauth_access_token(
            br#"{"access_token":"UT","expires_in":7200,"refresh_token":"RT","openid":"o3","scope":"snsapi_userinfo","unionid":"u1"}"#,
        )
        .unwrap();
        assert_eq!(
            (grant.openid.as_str(), grant.unionid.as_deref()),
            ("o3", Some("u1"))
        );
        assert!(grant.allows_userinfo());
        assert_eq!(grant.access_token.expose(), "UT");
        // The user's tokens never print.
        assert!(!format!("{grant:?}").contains("UT"));
        let base = parse_oauth_access_token(
            br#"{"access_token":"UT","openid":"o3","scope":"snsapi_base"}"#,
        )
        .unwrap();
        assert!(!base.allows_userinfo());
        assert_eq!(base.unionid, None);
        for (body, want) in [
            (
                &br#"{"errcode":40029,"errmsg":"invalid code"}"#[..],
                WeChatError::InvalidCode(40029),
            ),
            (br#"{"errcode":40163}"#, WeChatError::InvalidCode(40163)),
            (br#"{"errcode":45011}"#, WeChatError::RateLimited),
            (br#"{"errcode":-1}"#, WeChatError::Busy),
            (br#"{"errcode":40125}"#, WeChatError::BadCredential(40125)),
            (br#"{"errcode":41008}"#, WeChatError::Other(41008)),
            (
                br#"{"access_token":"UT"}"#,
                WeChatError::Malformed("no openid"),
            ),
            (
                br#"{"openid":"o3"}"#,
                WeChatError::Malformed("no access_token"),
            ),
        ] {
            assert_eq!(parse_oauth_access_token(body), Err(want));
        }
        assert_eq!(
            parse_oauth_unionid(br#"{"openid":"o3","nickname":"n","unionid":"u1"}"#),
            Ok(Some("u1".into()))
        );
        assert_eq!(parse_oauth_unionid(br#"{"openid":"o3"}"#), Ok(None));
        assert_eq!(
            parse_oauth_unionid(br#"{"errcode":42001}"#),
            Err(WeChatError::TokenRejected(42001))
        );
        assert_eq!(
            parse_oauth_unionid(br#"{"errcode":-1}"#),
            Err(WeChatError::Busy)
        );
    }

    #[test]
    fn risk_rank_answers() {
        assert_eq!(
            parse_risk_rank(
                br#"{"errcode":0,"errmsg":"getuserriskrank succ","risk_rank":3,"unoin_id":123}"#
            )
            .map(RiskRank::get),
            Ok(3)
        );
        for (body, want) in [
            (
                &br#"{"errcode":61010,"errmsg":"user is not exist"}"#[..],
                WeChatError::Other(61010),
            ),
            (br#"{"errcode":40001}"#, WeChatError::TokenRejected(40001)),
            (br#"{"errcode":-1}"#, WeChatError::Busy),
            (
                br#"{"errcode":0,"risk_rank":5}"#,
                WeChatError::Malformed("no risk_rank from 0 to 4"),
            ),
            (
                br#"{"errcode":0}"#,
                WeChatError::Malformed("no risk_rank from 0 to 4"),
            ),
        ] {
            assert_eq!(parse_risk_rank(body), Err(want));
        }
    }
}
