use std::sync::Mutex;

use super::*;
use crate::domain::jwt::{PublishedKey, Signer, SigningKeySecret, choose_signer};
use crate::domain::rotation::{CURRENT, KeyLifetimes, PENDING, PREVIOUS, RotationError};
use crate::ports::keys::PublicKeyStore;
use crate::ports::keys::RotationSecrets;
use crate::ports::memory::MemorySessionStore;

/// Secrets Manager's versions and stages, in memory.
#[derive(Default)]
struct Versions(Mutex<HashMap<String, (String, Vec<String>)>>);

impl Versions {
    fn with_current(secret: &str) -> Self {
        let versions = Self::default();
        versions
            .0
            .lock()
            .unwrap()
            .insert("v0".into(), (secret.into(), vec![CURRENT.into()]));
        versions
    }

    fn stage(&self, stage: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .values()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(text, _)| text.clone())
    }
}

impl RotationSecrets for Versions {
    async fn versions(&self) -> Result<HashMap<String, Vec<String>>, RotationError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(id, (_, stages))| (id.clone(), stages.clone()))
            .collect())
    }

    async fn secret_string(&self, version_id: &str) -> Result<Option<String>, RotationError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(version_id)
            .map(|(t, _)| t.clone()))
    }

    async fn put_pending(&self, token: &str, secret_string: &str) -> Result<(), RotationError> {
        let mut versions = self.0.lock().unwrap();
        for (_, stages) in versions.values_mut() {
            stages.retain(|s| s != PENDING);
        }
        versions.insert(token.into(), (secret_string.into(), vec![PENDING.into()]));
        Ok(())
    }

    async fn move_stage(
        &self,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), RotationError> {
        let mut versions = self.0.lock().unwrap();
        if let Some((_, stages)) = from.and_then(|from| versions.get_mut(from)) {
            stages.retain(|s| s != stage);
            if stage == CURRENT {
                stages.push(PREVIOUS.into());
            }
        }
        if stage == CURRENT {
            for (id, (_, stages)) in versions.iter_mut() {
                if Some(id.as_str()) != from {
                    stages.retain(|s| s != PREVIOUS);
                }
            }
        }
        if let Some((_, stages)) = to.and_then(|to| versions.get_mut(to)) {
            stages.push(stage.into());
        }
        Ok(())
    }
}

const LIFETIMES: KeyLifetimes = KeyLifetimes {
    lead_seconds: 7800,
    session_ttl_seconds: 600,
};

async fn step(
    step: &str,
    token: &str,
    secrets: &Versions,
    store: &MemorySessionStore,
    now: i64,
) -> Result<(), RotationError> {
    rotate(step, token, secrets, store, LIFETIMES, now).await
}

async fn all_steps(secrets: &Versions, store: &MemorySessionStore, token: &str, now: i64) {
    for name in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        step(name, token, secrets, store, now).await.unwrap();
        // Each step is idempotent: run twice.
        step(name, token, secrets, store, now).await.unwrap();
    }
}

fn signer(secrets: &Versions) -> Signer {
    let parse = |stage| {
        secrets
            .stage(stage)
            .and_then(|text| SigningKey::from_secret_string(&text).ok())
    };
    Signer {
        current: parse(CURRENT),
        previous: parse(PREVIOUS),
        pending: parse(PENDING),
        older: Vec::new(),
    }
}

fn published_at(published: &[PublishedKey], kid: &str) -> Option<i64> {
    published
        .iter()
        .find(|p| p.key.kid == kid)
        .map(|p| p.published_at)
}

async fn kids(store: &MemorySessionStore) -> Vec<String> {
    store
        .published_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key.kid)
        .collect()
}

#[tokio::test]
async fn the_first_rotation_replaces_the_placeholder_and_signs_at_once() {
    let secrets = Versions::with_current("placeholder, not a key");
    let store = MemorySessionStore::new();
    all_steps(&secrets, &store, "token-1", 1000).await;
    let signer = signer(&secrets);
    let current = signer.current.as_ref().unwrap();
    assert_eq!(current.kid(), "wxauth-token-1");
    assert!(signer.previous.is_none(), "the placeholder is no key");
    assert!(signer.pending.is_none(), "finishSecret took AWSPENDING off");
    let published = store.published_keys().await.unwrap();
    assert_eq!(published_at(&published, "wxauth-token-1"), Some(1000));
    assert_eq!(
        published[0].version_id.as_deref(),
        Some("token-1"),
        "the version it can be read from"
    );
    assert_eq!(
        choose_signer(&signer, &published, 7800, 1000)
            .unwrap()
            .kid(),
        "wxauth-token-1"
    );
}

#[tokio::test]
async fn a_second_rotation_publishes_first_and_keeps_the_previous_key() {
    let first: SigningKeySecret = generate_key("old").unwrap();
    let secrets = Versions::with_current(&serde_json::to_string(&first).unwrap());
    let store = MemorySessionStore::new();
    let old = SigningKey::from_secret(&first)
        .unwrap()
        .with_version_id(Some("v0".into()));
    store.publish(&[old.key_version()], 10).await.unwrap();
    step("createSecret", "t2", &secrets, &store, 500)
        .await
        .unwrap();
    step("setSecret", "t2", &secrets, &store, 500)
        .await
        .unwrap();
    // Published while still pending: accepted before anything signs with it.
    let published = store.published_keys().await.unwrap();
    assert_eq!(published_at(&published, "wxauth-t2"), Some(500));
    assert_eq!(published_at(&published, "old"), Some(10));
    step("testSecret", "t2", &secrets, &store, 600)
        .await
        .unwrap();
    step("finishSecret", "t2", &secrets, &store, 700)
        .await
        .unwrap();
    let signer = signer(&secrets);
    assert_eq!(signer.current.as_ref().unwrap().kid(), "wxauth-t2");
    assert_eq!(signer.previous.as_ref().unwrap().kid(), "old");
    // The lead time counts from the first publication (setSecret).
    let published = store.published_keys().await.unwrap();
    assert_eq!(
        choose_signer(&signer, &published, 7800, 8299)
            .unwrap()
            .kid(),
        "old"
    );
    assert_eq!(
        choose_signer(&signer, &published, 7800, 8300)
            .unwrap()
            .kid(),
        "wxauth-t2"
    );
    // A third rotation, 90 days on: "old" has signed nothing for far longer
    // than a session lives, and goes.
    let later = 90 * 86_400;
    all_steps(&secrets, &store, "t3", later).await;
    let kept = kids(&store).await;
    assert!(kept.contains(&"wxauth-t3".to_owned()));
    assert!(kept.contains(&"wxauth-t2".to_owned()));
    assert!(!kept.contains(&"old".to_owned()));
}

/// A scheduled rotation at T0, and an operator's change an hour later that
/// rotates again: the key that signed before T0 still signs (until T0's key
/// has been public for the lead) and must stay published, with every key
/// that may have signed a live token.
#[tokio::test]
async fn two_rotations_within_the_lead_unpublish_nothing_that_still_signs() {
    let first: SigningKeySecret = generate_key("old").unwrap();
    let secrets = Versions::with_current(&serde_json::to_string(&first).unwrap());
    let store = MemorySessionStore::new();
    let old = SigningKey::from_secret(&first)
        .unwrap()
        .with_version_id(Some("v0".into()));
    store.publish(&[old.key_version()], 0).await.unwrap();
    let t0 = 90 * 86_400;
    all_steps(&secrets, &store, "t1", t0).await;
    all_steps(&secrets, &store, "t2", t0 + 3600).await;
    let kept = kids(&store).await;
    assert_eq!(kept.len(), 3, "{kept:?}");
    // login, after both: "old" signs (read by its version, v0), the keys
    // public for an hour do not.
    let published = store.published_keys().await.unwrap();
    let wanted =
        crate::domain::jwt::preferred_key(&published, LIFETIMES.lead_seconds, t0 + 3600).unwrap();
    assert_eq!(
        (wanted.key.kid.as_str(), wanted.version_id.as_deref()),
        ("old", Some("v0"))
    );
    // The next rotation once t1's key has signed and its tokens expired
    // drops what cannot have signed a live token.
    let span = LIFETIMES.lead_seconds + LIFETIMES.session_ttl_seconds;
    assert_eq!(
        keys_to_keep(&published, LIFETIMES, t0 + span - 1).len(),
        3,
        "old signed until t0 + lead; its tokens live a session more"
    );
    assert_eq!(keys_to_keep(&published, LIFETIMES, t0 + span).len(), 2);
    assert_eq!(
        keys_to_keep(&published, LIFETIMES, t0 + 3600 + span).len(),
        1
    );
}

#[tokio::test]
async fn steps_other_than_create_need_the_version_and_unknown_steps_fail() {
    let secrets = Versions::with_current("x");
    let store = MemorySessionStore::new();
    for name in ["setSecret", "testSecret", "finishSecret"] {
        assert_eq!(
            step(name, "nope", &secrets, &store, 1).await,
            Err(RotationError::NoVersion("nope".into()))
        );
    }
    assert!(matches!(
        step("dance", "nope", &secrets, &store, 1).await,
        Err(RotationError::UnknownStep(_))
    ));
}

/// As AWS's rotation templates check: a version that is AWSCURRENT already
/// is done, and every other must be AWSPENDING. finishSecret run by hand
/// with an older version's token cannot move AWSCURRENT back.
#[tokio::test]
async fn the_steps_check_the_version_stage() {
    let first: SigningKeySecret = generate_key("old").unwrap();
    let secrets = Versions::with_current(&serde_json::to_string(&first).unwrap());
    let store = MemorySessionStore::new();
    all_steps(&secrets, &store, "t1", 100).await;
    // v0 is AWSPREVIOUS now.
    for name in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        assert_eq!(
            step(name, "v0", &secrets, &store, 200).await,
            Err(RotationError::NotPending("v0".into())),
            "{name}"
        );
    }
    assert_eq!(signer(&secrets).current.unwrap().kid(), "wxauth-t1");
    // The current version: every step is a no-op that succeeds.
    for name in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        step(name, "t1", &secrets, &store, 300).await.unwrap();
    }
    assert_eq!(signer(&secrets).current.unwrap().kid(), "wxauth-t1");
}

/// Secrets Manager makes the AWSPENDING version, with no value, before it
/// calls createSecret: the key is made into that version.
#[tokio::test]
async fn create_fills_the_pending_version_secrets_manager_made() {
    let secrets = Versions::with_current("x");
    secrets
        .0
        .lock()
        .unwrap()
        .insert("t1".into(), (String::new(), vec![PENDING.into()]));
    let store = MemorySessionStore::new();
    step("createSecret", "t1", &secrets, &store, 1)
        .await
        .unwrap();
    let pending = secrets.stage(PENDING).unwrap();
    assert_eq!(
        SigningKey::from_secret_string(&pending).unwrap().kid(),
        "wxauth-t1"
    );
}

/// testSecret refuses a key nobody published: it could not be checked.
#[tokio::test]
async fn test_needs_the_key_published() {
    let secrets = Versions::with_current("x");
    let store = MemorySessionStore::new();
    step("createSecret", "t1", &secrets, &store, 1)
        .await
        .unwrap();
    assert_eq!(
        step("testSecret", "t1", &secrets, &store, 1).await,
        Err(RotationError::NotPublished("wxauth-t1".into()))
    );
    step("setSecret", "t1", &secrets, &store, 1).await.unwrap();
    step("testSecret", "t1", &secrets, &store, 1).await.unwrap();
    // A version that holds no key fails the test step.
    secrets
        .0
        .lock()
        .unwrap()
        .insert("t9".into(), ("not a key".into(), vec![PENDING.into()]));
    assert!(matches!(
        step("testSecret", "t9", &secrets, &store, 1).await,
        Err(RotationError::BadKey(..))
    ));
}
