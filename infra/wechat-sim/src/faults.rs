//! Reserved codes: a code that names a misbehaviour makes the simulator answer
//! with it instead of a session or a phone number, in either mode.

use std::time::Duration;

use serde_json::json;

use crate::server::{HttpResponse, respond};

/// How long `slow` (and a stalled login) keeps the caller waiting: longer than
/// any timeout of the product's.
pub const STALL: Duration = Duration::from_secs(30);

pub(crate) enum Fault {
    /// `errcode-<n>`: errcode n, as WeChat sends it.
    Errcode(i64),
    /// `text-<n>`: errcode n in a hand-written text/plain body.
    TextErrcode(i64),
    /// `slow`: no answer within `STALL`.
    Slow,
    /// `html`: a gateway's HTML 502 page.
    Html,
    /// `notjson`: 200 with a body that is not JSON.
    NotJson,
    /// `huge`: 10 MB, which a client must refuse without reading it whole.
    Huge,
    /// `noopenid`: a "success" without an openid.
    NoOpenid,
}

impl Fault {
    pub(crate) fn of(code: &str) -> Option<Self> {
        if let Some(n) = code.strip_prefix("errcode-") {
            return n.parse().ok().map(Self::Errcode);
        }
        if let Some(n) = code.strip_prefix("text-") {
            return n.parse().ok().map(Self::TextErrcode);
        }
        Some(match code {
            "slow" => Self::Slow,
            "html" => Self::Html,
            "notjson" => Self::NotJson,
            "huge" => Self::Huge,
            "noopenid" => Self::NoOpenid,
            _ => return None,
        })
    }

    pub(crate) async fn answer(self) -> HttpResponse {
        match self {
            Self::Errcode(n) => errcode(n),
            Self::TextErrcode(n) => respond(
                200,
                "text/plain",
                format!("{{\"errcode\":{n},\"errmsg\":\"x\"}}"),
            ),
            Self::Slow => {
                tokio::time::sleep(STALL).await;
                errcode(-1)
            }
            Self::Html => respond(
                502,
                "text/html",
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            ),
            Self::NotJson => respond(200, "text/plain", "ok"),
            Self::Huge => respond(200, "application/json", vec![b' '; 10 * 1024 * 1024]),
            Self::NoOpenid => respond(
                200,
                "application/json",
                r#"{"session_key":"AAAAAAAAAAAAAAAAAAAAAA=="}"#,
            ),
        }
    }
}

/// An errcode answer. WeChat labels its JSON text/plain.
pub(crate) fn errcode(code: i64) -> HttpResponse {
    respond(
        200,
        "text/plain",
        json!({"errcode": code, "errmsg": format!("simulated errcode {code}, rid: 0")}).to_string(),
    )
}
