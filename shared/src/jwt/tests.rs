use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};

use super::*;

const NOW: i64 = 1_800_000_000;

fn key(kid: &str) -> SigningKey {
    // RSA generation takes a while: two keys serve every test.
    static KEYS: OnceLock<(SigningKeySecret, SigningKeySecret)> = OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (generate_key("k1").unwrap(), generate_key("k2").unwrap()));
    let secret = if kid == "k1" { a } else { b };
    SigningKey::from_secret(secret).unwrap()
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

#[test]
fn a_new_key_signs_only_after_the_lead_time() {
    let signer = Signer {
        current: Some(key("k2")),
        previous: Some(key("k1")),
        pending: None,
    };
    let lead = 7200;
    let chosen = |published: Option<i64>, now: i64| {
        choose_signer(&signer, published, lead, now)
            .unwrap()
            .kid()
            .to_owned()
    };
    assert_eq!(chosen(None, NOW), "k1");
    assert_eq!(chosen(Some(NOW), NOW), "k1");
    assert_eq!(chosen(Some(NOW), NOW + lead - 1), "k1");
    assert_eq!(chosen(Some(NOW), NOW + lead), "k2");
    // The first key of a deployment signs at once.
    let first = Signer {
        current: Some(key("k2")),
        ..Signer::default()
    };
    assert_eq!(choose_signer(&first, None, lead, NOW).unwrap().kid(), "k2");
    assert_eq!(signer.public_keys().len(), 2);
}

/// A secret whose stages change, as a rotation changes them.
struct Changing(std::sync::Mutex<Signer>);

impl SigningKeySource for Changing {
    async fn signing_keys(&self) -> Result<Signer, SigningKeyError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

fn kid_of(jwt: &str) -> String {
    header_kid(jwt).unwrap()
}

#[tokio::test]
async fn login_rereads_the_secret_and_holds_a_new_key_back_for_its_lead() {
    use crate::session::Session;
    let store = crate::memory::MemorySessionStore::new();
    let source = Changing(std::sync::Mutex::new(Signer {
        current: Some(key("k1")),
        ..Signer::default()
    }));
    let lead = 7200;
    let issuer = JwtIssuer::new(source, settings(), "wx1".into(), lead);
    let sid = crate::token::SessionToken::generate().unwrap();
    let session = Session {
        user_id: crate::account::UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
        openid: "o1".into(),
        unionid: None,
        session_key: None,
        session_key_expires_at: None,
        family: None,
        created_at: NOW,
        expires_at: NOW + 600,
    };
    let ms = |seconds: i64| seconds * 1000;
    issuer.load(&store, ms(NOW)).await.unwrap();
    let sign_at = |at: i64| issuer.token(&store, &session, &sid, ms(at));
    assert_eq!(kid_of(&sign_at(NOW).await.unwrap()), "k1");

    // A rotation: k2 becomes AWSCURRENT, k1 AWSPREVIOUS.
    *issuer_source(&issuer).0.lock().unwrap() = Signer {
        current: Some(key("k2")),
        previous: Some(key("k1")),
        pending: None,
    };
    // Not re-read yet: k1, and k2 is not published.
    assert_eq!(kid_of(&sign_at(NOW + 299).await.unwrap()), "k1");
    assert_eq!(store.published_keys().await.unwrap().len(), 1);
    // Re-read at 5 minutes: k2 is published now, and held back for its lead.
    let reread = NOW + 300;
    assert_eq!(kid_of(&sign_at(reread).await.unwrap()), "k1");
    let published = store.published_keys().await.unwrap();
    let k2 = published.iter().find(|p| p.key.kid == "k2").unwrap();
    assert_eq!(k2.published_at, reread);
    assert_eq!(kid_of(&sign_at(reread + lead - 1).await.unwrap()), "k1");
    // Later re-reads keep its first publication; the lead over, k2 signs.
    assert_eq!(kid_of(&sign_at(reread + lead).await.unwrap()), "k2");
}

fn issuer_source(issuer: &JwtIssuer<Changing>) -> &Changing {
    issuer.source()
}
