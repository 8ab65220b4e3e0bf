//! The phone number a mini-program receives from `getPhoneNumber`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::crypto::{DecryptFailure, EncryptedData, decrypt_open_data};
use crate::domain::redact::SessionKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    /// With country code when the user is outside mainland China, e.g. `+1 2025550123`.
    pub phone_number: String,
    /// Without country code.
    pub pure_phone_number: String,
    pub country_code: String,
}

impl PhoneNumber {
    /// Reads the three phone fields of a decrypted payload (or of getuserphonenumber's
    /// `phone_info`). `countryCode` is a string in WeChat's docs but a number in some
    /// answers seen in the wild, so both are taken.
    pub fn from_fields(object: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| match object.get(name)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        Some(Self {
            phone_number: text("phoneNumber")?,
            pure_phone_number: text("purePhoneNumber")?,
            country_code: text("countryCode")?,
        })
    }
}

/// Decrypts a `getPhoneNumber` payload and checks its watermark.
pub fn decrypt_phone(
    session_key: &SessionKey,
    data: &EncryptedData,
    appid: &str,
) -> Result<PhoneNumber, DecryptFailure> {
    let object = decrypt_open_data(session_key, data, appid)?;
    PhoneNumber::from_fields(&object).ok_or(DecryptFailure::MissingFields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::crypto::tests::{DEMO_APPID, DEMO_SESSION_KEY, demo_data, encrypt};
    use base64::Engine;

    #[test]
    fn decrypts_a_phone_payload() {
        let key = [3u8; 16];
        let iv = [4u8; 16];
        let plain = br#"{"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1477314187}}"#;
        let data = EncryptedData::new(encrypt(&key, &iv, plain), &iv).unwrap();
        let session_key = SessionKey::new(base64::engine::general_purpose::STANDARD.encode(key));
        let phone = decrypt_phone(&session_key, &data, DEMO_APPID).unwrap();
        assert_eq!(
            phone,
            PhoneNumber {
                phone_number: "13580006666".into(),
                pure_phone_number: "13580006666".into(),
                country_code: "86".into(),
            }
        );
        assert_eq!(
            serde_json::to_value(&phone).unwrap(),
            serde_json::json!({"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86"})
        );
    }

    #[test]
    fn user_info_payload_has_no_phone_fields() {
        let key = SessionKey::new(DEMO_SESSION_KEY);
        assert_eq!(
            decrypt_phone(&key, &demo_data(), DEMO_APPID),
            Err(DecryptFailure::MissingFields)
        );
    }

    #[test]
    fn numeric_country_code_is_accepted() {
        let object = serde_json::json!({"phoneNumber":"+1 2025550123","purePhoneNumber":"2025550123","countryCode":1});
        let phone = PhoneNumber::from_fields(object.as_object().unwrap()).unwrap();
        assert_eq!(phone.country_code, "1");
    }
}
