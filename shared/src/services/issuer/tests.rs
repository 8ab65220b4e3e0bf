use std::sync::OnceLock;

use super::*;
use crate::domain::jwt::{
    DEFAULT_AUDIENCE, JwtSettings, Signer, SigningKey, SigningKeySecret, generate_key, header_kid,
};
use crate::ports::keys::{PublicKeyStore, SigningKeyError, SigningKeySource};

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

fn session() -> crate::domain::session::Session {
    crate::domain::session::Session {
        user_id: crate::domain::account::UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
        appid: None,
        openid: "o1".into(),
        unionid: None,
        session_key: None,
        session_key_expires_at: None,
        family: None,
        created_at: NOW,
        expires_at: NOW + 600,
    }
}

fn far() -> crate::runtime::deadline::Deadline {
    crate::runtime::deadline::Deadline::after(std::time::Duration::from_secs(8))
}

#[tokio::test]
async fn login_rereads_the_secret_and_holds_a_new_key_back_for_its_lead() {
    let store = crate::ports::memory::MemorySessionStore::new();
    let source = Changing::new(Signer {
        current: Some(key("k1")),
        ..Signer::default()
    });
    let lead = 7800;
    let issuer = JwtIssuer::new(
        source,
        settings(),
        crate::domain::app::AppId::parse("wx1111111111111111").unwrap(),
        lead,
    );
    let sid = crate::domain::token::SessionToken::generate().unwrap();
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
    let store = crate::ports::memory::MemorySessionStore::new();
    let lead = 7800;
    let t0 = NOW;
    let issuer = JwtIssuer::new(
        Changing::new(Signer {
            current: Some(key("k1")),
            ..Signer::default()
        }),
        settings(),
        crate::domain::app::AppId::parse("wx1111111111111111").unwrap(),
        lead,
    )
    .with_reread_ms(0);
    let (sid, session) = (
        crate::domain::token::SessionToken::generate().unwrap(),
        session(),
    );
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
    let store = crate::ports::memory::MemorySessionStore::new();
    let issuer = JwtIssuer::new(
        Changing::new(Signer {
            current: Some(key("k1")),
            ..Signer::default()
        }),
        settings(),
        crate::domain::app::AppId::parse("wx1111111111111111").unwrap(),
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
        &crate::domain::token::SessionToken::generate().unwrap(),
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
