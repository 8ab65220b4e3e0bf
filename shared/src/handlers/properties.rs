//! Property tests on generated inputs: the decrypt path round-trips, any
//! ciphertext that fails answers the one 422 body (no padding oracle), and no
//! body, however malformed, gets anything but a 4xx in the contract's shape.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::Call;
use super::{CheckSession, DecryptPhone};
use crate::domain::crypto::EncryptedData;
use crate::domain::crypto::tests::encrypt;
use crate::domain::phone::{PhoneNumber, decrypt_phone};
use crate::domain::redact::SessionKey;
use crate::domain::session::Session;
use crate::domain::time::epoch_seconds;
use crate::edge::request::{ApiRequest, ApiResponse};
use crate::ports::memory::MemorySessionStore;
use crate::runtime::deadline::Deadline;

const APPID: &str = "wxPROPERTYTEST0001";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A store holding one live session with `key`, and its token.
fn session_with(key: [u8; 16]) -> (Arc<MemorySessionStore>, String) {
    let store = MemorySessionStore::new();
    let now = epoch_seconds();
    let token = store
        .insert_new(Session {
            user_id: crate::domain::account::UserId::generate().unwrap(),
            appid: crate::domain::app::AppId::parse(APPID),
            openid: "oPROP".into(),
            unionid: None,
            session_key: Some(SessionKey::new(STANDARD.encode(key))),
            session_key_expires_at: None,
            family: None,
            created_at: now,
            expires_at: now + 600,
        })
        .unwrap();
    (Arc::new(store), token.expose().to_owned())
}

fn post(path: &str, token: Option<&str>, body: Vec<u8>) -> ApiRequest {
    let request =
        ApiRequest::new("POST", path, Deadline::after(Duration::from_secs(5))).with_body(body);
    match token {
        Some(token) => request.with_bearer(token),
        None => request,
    }
}

fn is_contract_error(response: &ApiResponse) -> bool {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&response.body) else {
        return false;
    };
    body.len() == 2
        && body
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| Some(e) == response.error)
        && body
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn phone_payloads_round_trip(
        key in any::<[u8; 16]>(),
        iv in any::<[u8; 16]>(),
        country in "[1-9][0-9]{0,2}",
        number in "[0-9]{5,15}",
        extra in "[a-zA-Z0-9 ]{0,40}",
    ) {
        let plaintext = json!({
            "phoneNumber": format!("+{country} {number}"),
            "purePhoneNumber": number,
            "countryCode": country,
            "note": extra,
            "watermark": {"appid": APPID, "timestamp": 1_795_334_400},
        }).to_string();
        let data = EncryptedData::new(encrypt(&key, &iv, plaintext.as_bytes()), &iv).unwrap();
        let phone = decrypt_phone(&SessionKey::new(STANDARD.encode(key)), &data, APPID).unwrap();
        prop_assert_eq!(phone, PhoneNumber {
            phone_number: format!("+{country} {number}"),
            pure_phone_number: number,
            country_code: country,
        });
    }

    #[test]
    fn every_failed_decrypt_answers_the_same_bytes(
        key in any::<[u8; 16]>(),
        blocks in 1usize..24,
        seed in any::<u64>(),
        iv in any::<[u8; 16]>(),
    ) {
        let runtime = runtime();
        let (store, token) = session_with(key);
        let phone = DecryptPhone::new(store, crate::domain::app::Apps::parse(APPID).unwrap()).with_watermark_max_age(None);
        // Reference: a valid payload under another appid fails after decrypting.
        let wrong_appid = json!({"phoneNumber":"1","purePhoneNumber":"1","countryCode":"1","watermark":{"appid":"wxOTHER"}}).to_string();
        let reference = json!({"encryptedData": STANDARD.encode(encrypt(&key, &iv, wrong_appid.as_bytes())), "iv": STANDARD.encode(iv)});
        let expected = runtime.block_on(phone.call(post("/phone", Some(&token), reference.to_string().into_bytes())));
        prop_assert_eq!(expected.status, 422);

        // Random ciphertext: noise from a simple generator seeded by proptest.
        let mut state = seed | 1;
        let noise: Vec<u8> = (0..blocks * 16).map(|_| { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state as u8 }).collect();
        let body = json!({"encryptedData": STANDARD.encode(&noise), "iv": STANDARD.encode(iv)});
        let response = runtime.block_on(phone.call(post("/phone", Some(&token), body.to_string().into_bytes())));
        prop_assert_eq!(response.status, 422);
        prop_assert_eq!(response.body, expected.body);
        prop_assert_eq!(response.headers, expected.headers);
    }

    #[test]
    fn tampering_with_a_valid_payload_answers_the_same_bytes(
        key in any::<[u8; 16]>(),
        iv in any::<[u8; 16]>(),
        byte in 0usize..96,
        flip in 1u8..=255,
        in_iv in any::<bool>(),
    ) {
        let runtime = runtime();
        let (store, token) = session_with(key);
        let phone = DecryptPhone::new(store, crate::domain::app::Apps::parse(APPID).unwrap()).with_watermark_max_age(None);
        let plaintext = json!({"phoneNumber":"13580006666","purePhoneNumber":"13580006666","countryCode":"86","watermark":{"appid":APPID}}).to_string();
        let mut ciphertext = encrypt(&key, &iv, plaintext.as_bytes());
        let mut iv = iv;
        if in_iv { iv[byte % 16] ^= flip } else { let i = byte % ciphertext.len(); ciphertext[i] ^= flip }
        let body = json!({"encryptedData": STANDARD.encode(&ciphertext), "iv": STANDARD.encode(iv)});
        let response = runtime.block_on(phone.call(post("/phone", Some(&token), body.to_string().into_bytes())));
        // A flip can leave valid JSON with the phone intact (e.g. in the note-free
        // tail of a block whose next block is untouched); otherwise one 422 body.
        if response.status != 200 {
            prop_assert_eq!(response.status, 422);
            prop_assert!(is_contract_error(&response));
            prop_assert_eq!(&response.body[..], &crate::edge::error::ApiError::DecryptFailed.into_response().body[..]);
        }
    }

    #[test]
    fn malformed_bodies_get_a_4xx_in_the_contract_shape(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            "[ -~]{0,200}".prop_map(String::into_bytes),
            Just(b"{\"encryptedData\": [], \"iv\": {}}".to_vec()),
            Just(b"{\"rawData\": 5, \"signature\": null}".to_vec()),
            Just(b"{\"code\": \"\\u0000\"}".to_vec()),
            Just("[".repeat(200).into_bytes()),
        ],
        with_token in any::<bool>(),
    ) {
        let runtime = runtime();
        let (store, token) = session_with([1; 16]);
        let token = with_token.then_some(token.as_str());
        let phone = DecryptPhone::new(Arc::clone(&store), crate::domain::app::Apps::parse(APPID).unwrap());
        let check = CheckSession::new(Arc::clone(&store));
        for response in [
            runtime.block_on(phone.call(post("/phone", token, body.clone()))),
            runtime.block_on(check.call(post("/session", token, body.clone()))),
        ] {
            prop_assert!((400..500).contains(&response.status), "{} {:?}", response.status, String::from_utf8_lossy(&response.body));
            prop_assert!(is_contract_error(&response));
        }
    }
}
