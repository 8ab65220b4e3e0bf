use std::sync::Mutex;

use super::*;
use crate::jwt::{PublishedKey, Signer, SigningKeySecret, choose_signer};
use crate::memory::MemorySessionStore;

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

async fn all_steps(secrets: &Versions, store: &MemorySessionStore, token: &str, now: i64) {
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        rotate(step, token, secrets, store, now).await.unwrap();
        // Each step is idempotent: run twice.
        rotate(step, token, secrets, store, now).await.unwrap();
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
    }
}

fn published_at(published: &[PublishedKey], kid: &str) -> Option<i64> {
    published
        .iter()
        .find(|p| p.key.kid == kid)
        .map(|p| p.published_at)
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
        choose_signer(&signer, Some(1000), 7200, 1000)
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
    store
        .publish(
            &[SigningKey::from_secret(&first)
                .unwrap()
                .public_key()
                .clone()],
            10,
        )
        .await
        .unwrap();
    rotate("createSecret", "t2", &secrets, &store, 500)
        .await
        .unwrap();
    rotate("setSecret", "t2", &secrets, &store, 500)
        .await
        .unwrap();
    // Published while still pending: accepted before anything signs with it.
    let published = store.published_keys().await.unwrap();
    assert_eq!(published_at(&published, "wxauth-t2"), Some(500));
    assert_eq!(published_at(&published, "old"), Some(10));
    rotate("testSecret", "t2", &secrets, &store, 600)
        .await
        .unwrap();
    rotate("finishSecret", "t2", &secrets, &store, 700)
        .await
        .unwrap();
    let signer = signer(&secrets);
    assert_eq!(signer.current.as_ref().unwrap().kid(), "wxauth-t2");
    assert_eq!(signer.previous.as_ref().unwrap().kid(), "old");
    // The lead time counts from the first publication (setSecret).
    assert_eq!(
        choose_signer(&signer, Some(500), 7200, 7699).unwrap().kid(),
        "old"
    );
    assert_eq!(
        choose_signer(&signer, Some(500), 7200, 7700).unwrap().kid(),
        "wxauth-t2"
    );
    // A third rotation drops the oldest key from the published set.
    all_steps(&secrets, &store, "t3", 9000).await;
    let kids: Vec<String> = store
        .published_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key.kid)
        .collect();
    assert!(kids.contains(&"wxauth-t3".to_owned()));
    assert!(kids.contains(&"wxauth-t2".to_owned()));
    assert!(!kids.contains(&"old".to_owned()));
}

#[tokio::test]
async fn steps_other_than_create_need_the_version_and_unknown_steps_fail() {
    let secrets = Versions::with_current("x");
    let store = MemorySessionStore::new();
    for step in ["setSecret", "testSecret", "finishSecret"] {
        assert_eq!(
            rotate(step, "nope", &secrets, &store, 1).await,
            Err(RotationError::NoVersion("nope".into()))
        );
    }
    assert!(matches!(
        rotate("dance", "nope", &secrets, &store, 1).await,
        Err(RotationError::UnknownStep(_))
    ));
    // A version that holds no key fails the test step.
    assert!(matches!(
        rotate("testSecret", "v0", &secrets, &store, 1).await,
        Err(RotationError::BadKey(..))
    ));
}
