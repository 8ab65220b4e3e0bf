//! WeChat's open-data cryptography: lenient base64 in, strict lengths, AES-128-CBC
//! with PKCS#7, and the rawData signature.

use aes::Aes128;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::domain::redact::SessionKey;

type Aes128CbcDec = cbc::Decryptor<Aes128>;

pub const AES_BLOCK: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A form encoder turned `+` into a space somewhere between the client and us.
    #[error("contains a space")]
    SpaceInside,
    #[error("is not valid base64")]
    Invalid,
}

/// Decodes standard or URL-safe base64, padded or not. Clients differ, and
/// WeChat's own data is standard with padding.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, Base64Error> {
    if text.contains(' ') {
        return Err(Base64Error::SpaceInside);
    }
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE_PAD_INDIFFERENT
    } else {
        &STANDARD_PAD_INDIFFERENT
    };
    engine.decode(text).map_err(|_| Base64Error::Invalid)
}

/// Why decryption failed. Callers answer all of these with one body, so the
/// endpoint is no padding oracle; the variant is kept for tests and metrics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptFailure {
    #[error("session_key is not 16 bytes of base64")]
    BadSessionKey,
    #[error("bad padding")]
    Padding,
    #[error("plaintext is not UTF-8 JSON object")]
    NotJson,
    #[error("watermark appid does not match")]
    WatermarkMismatch,
    #[error("expected fields are missing")]
    MissingFields,
    #[error("watermark timestamp is missing or too old")]
    Stale,
}

/// WeChat's clock and ours may differ a little; data "from the future" within
/// this margin is accepted.
const FUTURE_SKEW_SECONDS: i64 = 60;

/// Checks that `watermark.timestamp` is at most `max_age_seconds` old at `now`
/// (epoch seconds). Replayed ciphertexts age out even while their session lives.
pub fn check_watermark_fresh(
    object: &Map<String, Value>,
    max_age_seconds: u64,
    now: i64,
) -> Result<(), DecryptFailure> {
    let timestamp = object
        .get("watermark")
        .and_then(|w| w.get("timestamp"))
        .and_then(Value::as_i64)
        .ok_or(DecryptFailure::Stale)?;
    let oldest = now.saturating_sub(i64::try_from(max_age_seconds).unwrap_or(i64::MAX));
    if timestamp < oldest || timestamp > now + FUTURE_SKEW_SECONDS {
        return Err(DecryptFailure::Stale);
    }
    Ok(())
}

/// Ciphertext and iv as the client sent them, already checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedData {
    ciphertext: Vec<u8>,
    iv: [u8; AES_BLOCK],
}

impl EncryptedData {
    /// `None` unless the iv is one block and the ciphertext a non-empty whole
    /// number of blocks: anything else cannot be CBC output.
    pub fn new(ciphertext: Vec<u8>, iv: &[u8]) -> Option<Self> {
        let iv: [u8; AES_BLOCK] = iv.try_into().ok()?;
        if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK != 0 {
            return None;
        }
        Some(Self { ciphertext, iv })
    }
}

/// AES-128-CBC decrypt and PKCS#7 unpad with the session_key, then parse the JSON
/// object and check that its watermark names our appid.
pub fn decrypt_open_data(
    session_key: &SessionKey,
    data: &EncryptedData,
    appid: &str,
) -> Result<Map<String, Value>, DecryptFailure> {
    let key = decode_base64(session_key.expose()).map_err(|_| DecryptFailure::BadSessionKey)?;
    let cipher =
        Aes128CbcDec::new_from_slices(&key, &data.iv).map_err(|_| DecryptFailure::BadSessionKey)?;
    let plaintext = cipher
        .decrypt_padded_vec::<Pkcs7>(&data.ciphertext)
        .map_err(|_| DecryptFailure::Padding)?;
    let object: Map<String, Value> =
        serde_json::from_slice(&plaintext).map_err(|_| DecryptFailure::NotJson)?;
    let watermark_appid = object
        .get("watermark")
        .and_then(|w| w.get("appid"))
        .and_then(Value::as_str);
    if watermark_appid != Some(appid) {
        return Err(DecryptFailure::WatermarkMismatch);
    }
    Ok(object)
}

/// Length of a rawData signature: hex of a SHA-1.
pub const SIGNATURE_HEX_CHARS: usize = 40;

/// `signature == sha1(rawData + session_key)`, compared in constant time.
/// `signature` is the 20 decoded bytes.
/// Encrypts open data as WeChat does for the mini-program (AES-128-CBC, PKCS#7,
/// the session_key's 16 bytes as the key): what the local server's simulator
/// hands out, and what tests and benchmarks decrypt.
pub fn encrypt_like_wechat(key: &[u8; 16], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes128>::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext)
}

pub fn signature_matches(raw_data: &str, session_key: &SessionKey, signature: &[u8; 20]) -> bool {
    let mut hasher = Sha1::new();
    hasher.update(raw_data.as_bytes());
    hasher.update(session_key.expose().as_bytes());
    let expected = hasher.finalize();
    expected.as_slice().ct_eq(signature).into()
}

/// hex(HMAC-SHA256(key, message)): the signature scheme of WeChat's user-state
/// APIs, keyed by the session_key string itself (its ASCII, not its base64 decoding).
pub fn hmac_sha256_hex(key: &str, message: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length; the error branch cannot happen.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The `signature` of `wxa/checksession`: the HMAC of the empty message under the
/// session_key. Proves we hold the key without sending it.
pub fn checksession_signature(session_key: &SessionKey) -> String {
    hmac_sha256_hex(session_key.expose(), b"")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // WeChat's official decrypt demo (开放数据校验与解密).
    pub const DEMO_APPID: &str = "wx4f4bc4dec97d474b";
    pub const DEMO_SESSION_KEY: &str = "tiihtNczf5v6AKRyjwEUhQ==";
    pub const DEMO_IV: &str = "r7BXXKkLb8qrSNn05n0qiA==";
    pub const DEMO_ENCRYPTED: &str = "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew==";

    pub fn demo_data() -> EncryptedData {
        EncryptedData::new(
            decode_base64(DEMO_ENCRYPTED).unwrap(),
            &decode_base64(DEMO_IV).unwrap(),
        )
        .unwrap()
    }

    pub use super::encrypt_like_wechat as encrypt;

    #[test]
    fn decrypts_wechat_official_demo() {
        let key = SessionKey::new(DEMO_SESSION_KEY);
        let object = decrypt_open_data(&key, &demo_data(), DEMO_APPID).unwrap();
        assert_eq!(object["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
        assert_eq!(object["nickName"], "Band");
        assert_eq!(object["watermark"]["appid"], DEMO_APPID);
    }

    #[test]
    fn demo_with_another_appid_is_a_watermark_mismatch() {
        let key = SessionKey::new(DEMO_SESSION_KEY);
        assert_eq!(
            decrypt_open_data(&key, &demo_data(), "wx0000000000000000"),
            Err(DecryptFailure::WatermarkMismatch)
        );
    }

    #[test]
    fn wrong_key_fails_without_panicking() {
        // Another valid 16-byte key: padding almost surely breaks; if it happens to
        // unpad, the bytes are not JSON. Either way one failure, never garbage out.
        let key = SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==");
        let err = decrypt_open_data(&key, &demo_data(), DEMO_APPID).unwrap_err();
        assert!(matches!(
            err,
            DecryptFailure::Padding | DecryptFailure::NotJson
        ));
    }

    #[test]
    fn short_or_long_session_key_is_refused_not_zero_padded() {
        for key in [
            "AAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "not base64!",
        ] {
            assert_eq!(
                decrypt_open_data(&SessionKey::new(key), &demo_data(), DEMO_APPID),
                Err(DecryptFailure::BadSessionKey),
                "{key}"
            );
        }
    }

    #[test]
    fn plaintext_that_is_not_json_or_lacks_watermark_fails() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let session_key = SessionKey::new(base64::engine::general_purpose::STANDARD.encode(key));
        for (plaintext, want) in [
            (&b"not json"[..], DecryptFailure::NotJson),
            (&[0xff, 0xfe, 0x00][..], DecryptFailure::NotJson),
            (&b"[1,2]"[..], DecryptFailure::NotJson),
            (
                &br#"{"phoneNumber":"1"}"#[..],
                DecryptFailure::WatermarkMismatch,
            ),
            (
                &br#"{"watermark":{"appid":5}}"#[..],
                DecryptFailure::WatermarkMismatch,
            ),
        ] {
            let data = EncryptedData::new(encrypt(&key, &iv, plaintext), &iv).unwrap();
            assert_eq!(
                decrypt_open_data(&session_key, &data, DEMO_APPID),
                Err(want)
            );
        }
    }

    #[test]
    fn watermark_freshness() {
        let object = |ts: Value| {
            serde_json::json!({"watermark": {"appid": "wx", "timestamp": ts}})
                .as_object()
                .unwrap()
                .clone()
        };
        let now = 1_800_000_000;
        assert_eq!(check_watermark_fresh(&object(now.into()), 300, now), Ok(()));
        assert_eq!(
            check_watermark_fresh(&object((now - 300).into()), 300, now),
            Ok(())
        );
        assert_eq!(
            check_watermark_fresh(&object((now - 301).into()), 300, now),
            Err(DecryptFailure::Stale)
        );
        assert_eq!(
            check_watermark_fresh(&object((now + 60).into()), 300, now),
            Ok(())
        );
        assert_eq!(
            check_watermark_fresh(&object((now + 61).into()), 300, now),
            Err(DecryptFailure::Stale)
        );
        assert_eq!(
            check_watermark_fresh(&object("soon".into()), 300, now),
            Err(DecryptFailure::Stale)
        );
        let demo = decrypt_open_data(&SessionKey::new(DEMO_SESSION_KEY), &demo_data(), DEMO_APPID)
            .unwrap();
        assert_eq!(
            check_watermark_fresh(&demo, 300, now),
            Err(DecryptFailure::Stale),
            "the 2016 demo is stale"
        );
    }

    #[test]
    fn encrypted_data_requires_whole_blocks_and_a_16_byte_iv() {
        assert!(EncryptedData::new(vec![0; 32], &[0; 16]).is_some());
        assert!(EncryptedData::new(vec![], &[0; 16]).is_none());
        assert!(EncryptedData::new(vec![0; 31], &[0; 16]).is_none());
        assert!(EncryptedData::new(vec![0; 32], &[0; 15]).is_none());
        assert!(EncryptedData::new(vec![0; 32], &[0; 17]).is_none());
    }

    #[test]
    fn base64_accepts_both_alphabets_with_or_without_padding() {
        let bytes = vec![0xfb, 0xff, 0xbf, 0x01];
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ"] {
            assert_eq!(decode_base64(text), Ok(bytes.clone()), "{text}");
        }
        assert_eq!(decode_base64("+/+/ AQ=="), Err(Base64Error::SpaceInside));
        assert_eq!(decode_base64("+_+/AQ=="), Err(Base64Error::Invalid));
        assert_eq!(decode_base64("@@@@"), Err(Base64Error::Invalid));
    }

    // rawData signature example from WeChat's docs (开放数据校验).
    const SIG_RAW_DATA: &str = r#"{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}"#;
    const SIG_SESSION_KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";
    const SIG_EXPECTED: &str = "75e81ceda165f4ffa64f4068af58c64b8f54b88c";

    fn sig(hex_text: &str) -> [u8; 20] {
        hex::decode(hex_text).unwrap().try_into().unwrap()
    }

    #[test]
    fn signature_matches_wechat_docs_example() {
        let key = SessionKey::new(SIG_SESSION_KEY);
        assert!(signature_matches(SIG_RAW_DATA, &key, &sig(SIG_EXPECTED)));
        assert!(signature_matches(
            SIG_RAW_DATA,
            &key,
            &sig(&SIG_EXPECTED.to_uppercase())
        ));
    }

    /// WeChat's documented example for its HMAC-SHA256 user-state signatures. The
    /// docs print only the first bytes; the full value is from
    /// `printf '{"foo":"bar"}' | openssl dgst -sha256 -hmac 'o0q0otL8aEzpcZL/FT9WsQ=='`.
    #[test]
    fn hmac_signature_matches_wechat_docs_example() {
        let signature = hmac_sha256_hex("o0q0otL8aEzpcZL/FT9WsQ==", br#"{"foo":"bar"}"#);
        assert!(signature.starts_with("654571f7"));
        assert_eq!(
            signature,
            "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
        );
    }

    /// checksession signs the empty message (value from `openssl dgst` likewise).
    #[test]
    fn checksession_signature_is_the_hmac_of_nothing() {
        assert_eq!(
            checksession_signature(&SessionKey::new("o0q0otL8aEzpcZL/FT9WsQ==")),
            "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"
        );
    }

    #[test]
    fn signature_rejects_any_change() {
        let key = SessionKey::new(SIG_SESSION_KEY);
        let mut flipped = sig(SIG_EXPECTED);
        flipped[19] ^= 1;
        assert!(!signature_matches(SIG_RAW_DATA, &key, &flipped));
        assert!(!signature_matches(
            &SIG_RAW_DATA.replace("Band", "Bond"),
            &key,
            &sig(SIG_EXPECTED)
        ));
        assert!(!signature_matches(
            SIG_RAW_DATA,
            &SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA=="),
            &sig(SIG_EXPECTED)
        ));
    }
}
