use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};

use super::*;

const NOW: i64 = 1_800_000_000;

fn key(kid: &str) -> SigningKey {
    // RSA generation takes a while: three keys serve every test.
    static KEYS: OnceLock<[SigningKeySecret; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| ["k1", "k2", "k3"].map(|kid| generate_key(kid).unwrap()));
    let secret = keys
        .iter()
        .find(|secret| secret.kid == kid)
        .expect("k1, k2 or k3");
    SigningKey::from_secret(secret)
        .unwrap()
        .with_version_id(Some(format!("v-{kid}")))
}

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "https://auth.example.com".into(),
        audience: DEFAULT_AUDIENCE.into(),
    }
}

fn claims() -> Claims {
    Claims {
        iss: settings().issuer,
        aud: settings().audience,
        sub: "u_AAAAAAAAAAAAAAAAAAAAAA".into(),
        openid: "o1".into(),
        unionid: None,
        appid: "wx1".into(),
        sid: "A".repeat(43),
        iat: NOW,
        exp: NOW + 600,
    }
}

fn check(token: &str, with: &SigningKey) -> Result<VerifiedJwt, JwtRefusal> {
    header_kid(token)?;
    verify(token, &with.public_key().decoding_key(), &settings(), NOW)
}

fn part(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn a_signed_token_carries_exactly_the_contract_claims_and_verifies() {
    let k1 = key("k1");
    let token = sign(&k1, &claims()).unwrap();
    assert!(looks_like_jwt(&token));
    assert_eq!(header_kid(&token).unwrap(), "k1");
    let verified = check(&token, &k1).unwrap();
    assert_eq!(verified.user_id.as_str(), "u_AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(verified.sid.expose(), "A".repeat(43));
    let payload: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut names: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["appid", "aud", "exp", "iat", "iss", "openid", "sid", "sub"]
    );
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"})
    );
}

#[test]
fn forgeries_are_refused() {
    let k1 = key("k1");
    let k2 = key("k2");
    let good = sign(&k1, &claims()).unwrap();
    let [_, payload, signature]: [&str; 3] =
        good.split('.').collect::<Vec<_>>().try_into().unwrap();

    // alg none, with and without a signature.
    let none = part(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"}));
    assert_eq!(
        check(&format!("{none}.{payload}."), &k1),
        Err(JwtRefusal::Algorithm)
    );
    assert_eq!(
        check(&format!("{none}.{payload}.{signature}"), &k1),
        Err(JwtRefusal::Algorithm)
    );

    // HS256 keyed with the public key's bytes (the classic confusion).
    let hs = part(&serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&k1.public_key().n).unwrap();
    mac.update(format!("{hs}.{payload}").as_bytes());
    let forged = format!(
        "{hs}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(check(&forged, &k1), Err(JwtRefusal::Algorithm));
    // Even if the header check were skipped, the library refuses it.
    assert!(verify(&forged, &k1.public_key().decoding_key(), &settings(), NOW).is_err());

    // A tampered payload.
    let mut tampered = claims();
    tampered.sub = "u_BBBBBBBBBBBBBBBBBBBBBB".into();
    let header = good.split('.').next().unwrap();
    let tampered = format!(
        "{header}.{}.{signature}",
        part(&serde_json::to_value(&tampered).unwrap())
    );
    assert_eq!(check(&tampered, &k1), Err(JwtRefusal::Signature));

    // The right kid, signed by another key.
    let mut other = sign(&k2, &claims()).unwrap();
    let other_sig = other.split('.').nth(2).unwrap().to_owned();
    other = format!("{header}.{payload}.{other_sig}");
    assert_eq!(check(&other, &k1), Err(JwtRefusal::Signature));

    // Wrong iss, aud (or aud as an array), expired (exp == now: no leeway).
    for (field, value) in [
        ("iss", serde_json::json!("https://evil.example.com")),
        ("aud", serde_json::json!("other")),
        ("aud", serde_json::json!(["wxauth"])),
        ("exp", serde_json::json!(NOW)),
        ("sid", serde_json::json!("short")),
        ("sub", serde_json::json!("someone")),
    ] {
        let mut value_claims = serde_json::to_value(claims()).unwrap();
        value_claims[field] = value;
        let token = sign_value(&k1, &value_claims);
        assert!(check(&token, &k1).is_err(), "{field}");
    }

    // Not a JWT at all.
    for bad in ["", "a.b.c", "..", "e30.e30.", &"A".repeat(43)] {
        assert!(check(bad, &k1).is_err(), "{bad}");
    }
    // No issuer configured: nothing passes (the caller refuses before
    // verify; here: a different issuer is a refusal).
    let mut no_issuer = settings();
    no_issuer.issuer = String::new();
    assert!(verify(&good, &k1.public_key().decoding_key(), &no_issuer, NOW).is_err());
}

fn sign_value(key: &SigningKey, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).unwrap()
}

#[test]
fn malformed_signing_keys_are_refused() {
    let good = generate_key("k9").unwrap();
    assert!(SigningKey::from_secret_string(&serde_json::to_string(&good).unwrap()).is_ok());
    for (secret, error) in [
        ("not json".to_owned(), KeyError::NotJson),
        (r#"{"kid": "a"}"#.to_owned(), KeyError::NotJson),
        (
            serde_json::json!({"kid": "", "privateKey": good.private_key}).to_string(),
            KeyError::Kid,
        ),
        (
            serde_json::json!({"kid": "a/b", "privateKey": good.private_key}).to_string(),
            KeyError::Kid,
        ),
        (
            serde_json::json!({"kid": "a", "privateKey": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}).to_string(),
            KeyError::NotPkcs8Rsa,
        ),
        (
            serde_json::json!({"kid": "a", "privateKey": "hello"}).to_string(),
            KeyError::NotPkcs8Rsa,
        ),
    ] {
        assert_eq!(SigningKey::from_secret_string(&secret).unwrap_err(), error, "{secret}");
    }
    assert!(!format!("{good:?}").contains("PRIVATE"));
}

fn published(keys: &[(&str, i64)]) -> Vec<PublishedKey> {
    keys.iter()
        .map(|(kid, at)| PublishedKey {
            key: key(kid).public_key().clone(),
            published_at: *at,
            version_id: Some(format!("v-{kid}")),
        })
        .collect()
}

#[test]
fn a_new_key_signs_only_after_the_lead_time() {
    let signer = Signer {
        current: Some(key("k2")),
        previous: Some(key("k1")),
        ..Signer::default()
    };
    let lead = 7800;
    let set = published(&[("k1", NOW - 90 * 86_400), ("k2", NOW)]);
    let chosen = |now: i64| {
        choose_signer(&signer, &set, lead, now)
            .unwrap()
            .kid()
            .to_owned()
    };
    assert_eq!(chosen(NOW), "k1");
    assert_eq!(chosen(NOW + lead - 1), "k1");
    assert_eq!(chosen(NOW + lead), "k2");
    // Not published at all yet (login publishes before it signs): the
    // previous key, published long ago.
    let only_k1 = published(&[("k1", NOW - 90 * 86_400)]);
    assert_eq!(
        choose_signer(&signer, &only_k1, lead, NOW).unwrap().kid(),
        "k1"
    );
    // The first key of a deployment signs at once.
    let first = Signer {
        current: Some(key("k2")),
        ..Signer::default()
    };
    let just_now = published(&[("k2", NOW)]);
    assert_eq!(
        choose_signer(&first, &just_now, lead, NOW).unwrap().kid(),
        "k2"
    );
    assert_eq!(choose_signer(&first, &[], lead, NOW).unwrap().kid(), "k2");
    assert_eq!(signer.public_keys().len(), 2);
}

/// A scheduled rotation at T0 and an operator's at T0 + 1 h: AWSPREVIOUS
/// is then a key public for only an hour, which must not sign; the key that
/// signed before T0 keeps signing until k2 has been public for the lead.
#[test]
fn two_rotations_within_the_lead_keep_the_key_that_signs() {
    let lead = 7800;
    let t0 = NOW;
    let set = published(&[("k1", t0 - 90 * 86_400), ("k2", t0), ("k3", t0 + 3600)]);
    // The stages after the second rotation: k1 holds none.
    let stages = Signer {
        current: Some(key("k3")),
        previous: Some(key("k2")),
        ..Signer::default()
    };
    let wanted = |now| preferred_key(&set, lead, now).unwrap().key.kid.clone();
    assert_eq!(wanted(t0 + 3600), "k1");
    // Without k1's private half, the next best is not AWSPREVIOUS's k2
    // (public an hour) but nothing younger than the lead: only AWSCURRENT
    // is left as the last resort, so login must read k1 by its version.
    let with_k1 = Signer {
        older: vec![key("k1")],
        ..stages.clone()
    };
    let chosen = |signer: &Signer, now| {
        choose_signer(signer, &set, lead, now)
            .unwrap()
            .kid()
            .to_owned()
    };
    assert_eq!(chosen(&with_k1, t0 + 3600), "k1");
    assert_eq!(chosen(&with_k1, t0 + lead - 1), "k1");
    assert_eq!(chosen(&with_k1, t0 + lead), "k2");
    assert_eq!(chosen(&with_k1, t0 + 3600 + lead), "k3");
    // In a deployment younger than the lead, the oldest key signs.
    let young = published(&[("k2", t0), ("k3", t0 + 3600)]);
    assert_eq!(
        choose_signer(&stages, &young, lead, t0 + 3600)
            .unwrap()
            .kid(),
        "k2"
    );
}
