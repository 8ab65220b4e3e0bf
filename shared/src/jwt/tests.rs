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

/// A secret whose stages change, as a rotation changes them; it counts its
/// reads and can be made to fail or stall.
#[derive(Default)]
struct Changing {
    stages: std::sync::Mutex<Signer>,
    /// Every version ever held (what GetSecretValue by version id finds).
    versions: std::sync::Mutex<Vec<SigningKey>>,
    reads: std::sync::atomic::AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl Changing {
    fn new(stages: Signer) -> Self {
        let this = Self::default();
        this.set(stages);
        this
    }

    fn set(&self, stages: Signer) {
        self.versions.lock().unwrap().extend(stages.keys().cloned());
        *self.stages.lock().unwrap() = stages;
    }

    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl SigningKeySource for Changing {
    async fn signing_keys(&self) -> Result<Signer, SigningKeyError> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            // A Secrets Manager that does not answer.
            std::future::pending::<()>().await;
        }
        Ok(self.stages.lock().unwrap().clone())
    }

    async fn key_of_version(
        &self,
        version_id: &str,
    ) -> Result<Option<SigningKey>, SigningKeyError> {
        Ok(self
            .versions
            .lock()
            .unwrap()
            .iter()
            .find(|key| key.version_id() == Some(version_id))
            .cloned())
    }
}

fn kid_of(jwt: &str) -> String {
    header_kid(jwt).unwrap()
}

fn session() -> crate::session::Session {
    crate::session::Session {
        user_id: crate::account::UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
        openid: "o1".into(),
        unionid: None,
        session_key: None,
        session_key_expires_at: None,
        family: None,
        created_at: NOW,
        expires_at: NOW + 600,
    }
}

fn far() -> crate::deadline::Deadline {
    crate::deadline::Deadline::after(std::time::Duration::from_secs(8))
}

#[tokio::test]
async fn login_rereads_the_secret_and_holds_a_new_key_back_for_its_lead() {
    let store = crate::memory::MemorySessionStore::new();
    let source = Changing::new(Signer {
        current: Some(key("k1")),
        ..Signer::default()
    });
    let lead = 7800;
    let issuer = JwtIssuer::new(source, settings(), "wx1".into(), lead);
    let sid = crate::token::SessionToken::generate().unwrap();
    let session = session();
    let ms = |seconds: i64| seconds * 1000;
    issuer.load(&store, ms(NOW)).await.unwrap();
    let sign_at = |at: i64| issuer.token(&session, &sid, ms(at));
    assert_eq!(kid_of(&sign_at(NOW).unwrap()), "k1");

    // A rotation: k2 becomes AWSCURRENT, k1 AWSPREVIOUS.
    issuer.source().set(Signer {
        current: Some(key("k2")),
        previous: Some(key("k1")),
        ..Signer::default()
    });
    // Not re-read yet: k1, and k2 is not published.
    issuer.reload_if_due(&store, ms(NOW + 299), far()).await;
    assert_eq!(kid_of(&sign_at(NOW + 299).unwrap()), "k1");
    assert_eq!(store.published_keys().await.unwrap().len(), 1);
    // Re-read at 5 minutes: k2 is published now, and held back for its lead.
    let reread = NOW + 300;
    issuer.reload_if_due(&store, ms(reread), far()).await;
    assert_eq!(kid_of(&sign_at(reread).unwrap()), "k1");
    let published = store.published_keys().await.unwrap();
    let k2 = published.iter().find(|p| p.key.kid == "k2").unwrap();
    assert_eq!(k2.published_at, reread);
    assert_eq!(k2.version_id.as_deref(), Some("v-k2"));
    assert_eq!(kid_of(&sign_at(reread + lead - 1).unwrap()), "k1");
    // The lead over, k2 signs, from the keys loaded: signing reads nothing.
    let reads = issuer.source().reads();
    assert_eq!(kid_of(&sign_at(reread + lead).unwrap()), "k2");
    assert_eq!(issuer.source().reads(), reads);
}

/// Two rotations within the lead: the key that signed before them holds no
/// stage any more, and login reads it by its version to go on signing.
#[tokio::test]
async fn login_reads_an_older_version_that_must_still_sign() {
    let store = crate::memory::MemorySessionStore::new();
    let lead = 7800;
    let t0 = NOW;
    let issuer = JwtIssuer::new(
        Changing::new(Signer {
            current: Some(key("k1")),
            ..Signer::default()
        }),
        settings(),
        "wx1".into(),
        lead,
    )
    .with_reread_ms(0);
    let (sid, session) = (crate::token::SessionToken::generate().unwrap(), session());
    let ms = |seconds: i64| seconds * 1000;
    // k1 has signed for months.
    issuer.load(&store, ms(t0 - 90 * 86_400)).await.unwrap();
    issuer.source().set(Signer {
        current: Some(key("k2")),
        previous: Some(key("k1")),
        ..Signer::default()
    });
    issuer.reload_if_due(&store, ms(t0), far()).await;
    issuer.source().set(Signer {
        current: Some(key("k3")),
        previous: Some(key("k2")),
        ..Signer::default()
    });
    issuer.reload_if_due(&store, ms(t0 + 3600), far()).await;
    let sign_at = |at: i64| kid_of(&issuer.token(&session, &sid, ms(at)).unwrap());
    assert_eq!(sign_at(t0 + 3600), "k1", "read by its version");
    issuer.reload_if_due(&store, ms(t0 + lead), far()).await;
    assert_eq!(sign_at(t0 + lead), "k2");
    issuer
        .reload_if_due(&store, ms(t0 + 3600 + lead), far())
        .await;
    assert_eq!(sign_at(t0 + 3600 + lead), "k3");
}

/// Secrets Manager stalls: the re-read gives up within the request's
/// budget, the keys loaded go on signing, and the next try waits half a
/// minute or more instead of costing every request.
#[tokio::test(start_paused = true)]
async fn a_failed_reread_keeps_signing_and_waits_before_the_next() {
    let store = crate::memory::MemorySessionStore::new();
    let issuer = JwtIssuer::new(
        Changing::new(Signer {
            current: Some(key("k1")),
            ..Signer::default()
        }),
        settings(),
        "wx1".into(),
        0,
    );
    let ms = |seconds: i64| seconds * 1000;
    issuer.load(&store, ms(NOW)).await.unwrap();
    issuer
        .source()
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let due = NOW + 300;
    let started = tokio::time::Instant::now();
    issuer.reload_if_due(&store, ms(due), far()).await;
    assert_eq!(started.elapsed(), RELOAD_BUDGET, "bounded by its budget");
    assert_eq!(issuer.source().reads(), 2);
    let token = issuer.token(
        &session(),
        &crate::token::SessionToken::generate().unwrap(),
        ms(due),
    );
    assert_eq!(kid_of(&token.unwrap()), "k1");
    // Within the pause: no read at all, however many requests come.
    for later in [1, 10, 29] {
        issuer.reload_if_due(&store, ms(due + later), far()).await;
    }
    assert_eq!(issuer.source().reads(), 2);
    // A shorter request deadline bounds it too.
    issuer
        .source()
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    issuer.reload_if_due(&store, ms(due + 61), far()).await;
    assert_eq!(issuer.source().reads(), 3, "tried again after the pause");
}
