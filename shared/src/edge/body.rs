//! A request's JSON body and the checks its fields share.

use serde_json::{Map, Value};

use crate::domain::crypto::{Base64Error, decode_base64};
use crate::edge::error::ApiError;
use crate::edge::request::ApiRequest;

/// A request body that is a JSON object.
#[derive(Debug)]
pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    /// Any Content-Type: mini-program clients and proxies label bodies loosely.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(object)) => Ok(Self(object)),
            _ => Err(ApiError::InvalidRequest(
                "The request body must be a JSON object.".into(),
            )),
        }
    }

    /// The request's body as a JSON object. A body that is not JSON but is
    /// form-encoded, by its Content-Type or by its `k=v&…` shape, is named as
    /// such: `wx.request` with a form content-type is the usual cause. A JSON
    /// body is read whatever its label.
    pub fn from_request(request: &ApiRequest) -> Result<Self, ApiError> {
        Self::parse(&request.body).map_err(|err| {
            let labelled = request.header("content-type").is_some_and(|value| {
                value
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
            if labelled || looks_form_encoded(&request.body) {
                invalid(FORM_ENCODED.into())
            } else {
                err
            }
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A field, whatever its type; `None` when absent or null.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|value| !value.is_null())
    }

    /// A present, non-empty string field.
    pub fn required_str(&self, name: &str) -> Result<&str, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Err(invalid(format!("{name} is missing."))),
            Some(Value::String(s)) if s.is_empty() => Err(invalid(format!("{name} is empty."))),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(invalid(format!("{name} must be a string."))),
        }
    }

    /// A required base64 field of at most `max_chars` characters, decoded.
    pub fn base64_field(&self, name: &str, max_chars: usize) -> Result<Vec<u8>, ApiError> {
        let text = self.required_str(name)?;
        if text.chars().count() > max_chars {
            return Err(invalid(format!(
                "{name} is longer than {max_chars} characters."
            )));
        }
        decode_base64(text).map_err(|err| match err {
            Base64Error::SpaceInside => invalid(format!(
                "{name} contains a space: a '+' was probably form-encoded into a space on the way; send the body as JSON, or encode '+' as %2B."
            )),
            Base64Error::Invalid => invalid(format!("{name} is not valid base64.")),
        })
    }
}

pub(crate) const FORM_ENCODED: &str = "The request body is form-encoded (application/x-www-form-urlencoded), and this API takes JSON: send a JSON object with content-type: application/json (wx.request with an object as data).";

/// `key=value` pairs joined by `&`, with nothing a JSON document starts with.
fn looks_form_encoded(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let text = text.trim();
    !text.is_empty()
        && !text.starts_with(['{', '[', '"'])
        && !text.contains(char::is_whitespace)
        && text.split('&').all(|pair| {
            pair.split_once('=').is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.%[]".contains(c))
            })
        })
}

pub fn invalid(message: String) -> ApiError {
    ApiError::InvalidRequest(message)
}

/// A code from wx.login or the getPhoneNumber button is at most this long;
/// WeChat's are 32 (login) or 64 (phone) characters.
pub const MAX_CODE_CHARS: usize = 128;

/// The `code` field: 1 to 128 visible ASCII characters.
pub fn code_field(body: &JsonBody) -> Result<&str, ApiError> {
    let code = body.required_str("code")?;
    if code.len() > MAX_CODE_CHARS || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "code must be 1 to {MAX_CODE_CHARS} visible ASCII characters, as WeChat hands it to the mini-program."
        )));
    }
    Ok(code)
}
