//! The published key set: the public half of every accepted signing key, kept
//! in the session table (`ports::keys::PublicKeyStore`), so that checkers never
//! read the private key.

use super::PublicKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub key: PublicKey,
    /// Epoch seconds of its first publication: what the lead time counts from.
    pub published_at: i64,
    /// The signing key secret's version that holds the private half, when
    /// known: `login` reads it by id when the key must still sign after its
    /// version lost every stage (two rotations within the lead).
    pub version_id: Option<String>,
}

/// A public key to publish, with the secret version of its private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    pub key: PublicKey,
    pub version_id: Option<String>,
}

impl From<PublicKey> for KeyVersion {
    fn from(key: PublicKey) -> Self {
        Self {
            key,
            version_id: None,
        }
    }
}

/// Merges `keys` into `published` at `now`: new keys are added with `now` as
/// their first publication; known ones keep it and gain a missing version id.
/// The one rule for every store.
pub fn merge_published(
    mut published: Vec<PublishedKey>,
    keys: &[KeyVersion],
    now: i64,
) -> Vec<PublishedKey> {
    for key in keys {
        match published.iter_mut().find(|p| p.key.kid == key.key.kid) {
            Some(known) => {
                if known.version_id.is_none() {
                    known.version_id.clone_from(&key.version_id);
                }
            }
            None => published.push(PublishedKey {
                key: key.key.clone(),
                published_at: now,
                version_id: key.version_id.clone(),
            }),
        }
    }
    published.sort_by(|a, b| a.key.kid.cmp(&b.key.kid));
    published
}
