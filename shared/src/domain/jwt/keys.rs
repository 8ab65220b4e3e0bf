//! The signing key: parsed once from its secret, its public half published.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{KeyVersion, PublishedKey};
use tracing::warn;

const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 4096;
const MAX_KID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the secret is not JSON {{\"kid\", \"privateKey\"}}")]
    NotJson,
    #[error("kid must be 1 to 64 of A-Z a-z 0-9 . _ -")]
    Kid,
    #[error("privateKey is not a PKCS#8 PEM RSA key")]
    NotPkcs8Rsa,
    #[error("the RSA key has {0} bits; 2048 to 4096 are accepted")]
    Size(usize),
    #[error("signing failed")]
    Signing,
    #[error("key generation failed")]
    Generation,
}

/// The secret's JSON. Its Debug shows only the kid.
#[derive(Clone, Deserialize, Serialize)]
pub struct SigningKeySecret {
    pub kid: String,
    #[serde(rename = "privateKey")]
    pub private_key: String,
}

impl fmt::Debug for SigningKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeySecret")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub fn valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_CHARS).contains(&kid.len())
        && kid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Parses a stage's SecretString; a malformed one is logged by kid-less reason.
pub fn parse_stage(stage: &str, text: Option<&str>) -> Result<Option<SigningKey>, KeyError> {
    match text {
        None => Ok(None),
        Some(text) => SigningKey::from_secret_string(text)
            .map(Some)
            .map_err(|err| {
                warn!(stage, error = %err, "signing key stage is not a usable key");
                err
            }),
    }
}

/// An RSA public key as a JWK names it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// Big-endian, no leading zero.
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl PublicKey {
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }

    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_rsa_raw_components(&self.n, &self.e)
    }

    /// The stored base64url form back (the published set in the table).
    pub fn from_encoded(kid: &str, n: &str, e: &str) -> Option<Self> {
        Some(Self {
            kid: kid.to_owned(),
            n: URL_SAFE_NO_PAD.decode(n).ok()?,
            e: URL_SAFE_NO_PAD.decode(e).ok()?,
        })
    }

    pub fn encoded_n(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.n)
    }

    pub fn encoded_e(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.e)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.kid).finish()
    }
}

/// A private key, parsed and checked once (at start-up or on a re-read of the
/// secret), never on the request path.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: PublicKey,
    /// The secret version it was read from, when known: what finds it again
    /// once it holds no stage.
    version_id: Option<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The secret's SecretString: `{"kid", "privateKey": PKCS#8 PEM RSA}`.
    pub fn from_secret_string(secret: &str) -> Result<Self, KeyError> {
        let parsed: SigningKeySecret =
            serde_json::from_str(secret).map_err(|_| KeyError::NotJson)?;
        Self::from_secret(&parsed)
    }

    pub fn from_secret(secret: &SigningKeySecret) -> Result<Self, KeyError> {
        if !valid_kid(&secret.kid) {
            return Err(KeyError::Kid);
        }
        let pem = pem::parse(secret.private_key.trim()).map_err(|_| KeyError::NotPkcs8Rsa)?;
        if pem.tag() != "PRIVATE KEY" {
            return Err(KeyError::NotPkcs8Rsa);
        }
        let pair = KeyPair::from_pkcs8(pem.contents()).map_err(|_| KeyError::NotPkcs8Rsa)?;
        let bits = pair.public_modulus_len() * 8;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(KeyError::Size(bits));
        }
        let public = aws_lc_rs::signature::RsaPublicKeyComponents::<Vec<u8>>::from(
            aws_lc_rs::signature::KeyPair::public_key(&pair),
        );
        let encoding = EncodingKey::from_rsa_pem(secret.private_key.trim().as_bytes())
            .map_err(|_| KeyError::NotPkcs8Rsa)?;
        Ok(Self {
            kid: secret.kid.clone(),
            encoding,
            public: PublicKey {
                kid: secret.kid.clone(),
                n: strip_leading_zeros(public.n),
                e: strip_leading_zeros(public.e),
            },
            version_id: None,
        })
    }

    /// The key as read from secret version `version_id`.
    pub fn with_version_id(mut self, version_id: Option<String>) -> Self {
        self.version_id = version_id;
        self
    }

    pub fn version_id(&self) -> Option<&str> {
        self.version_id.as_deref()
    }

    /// The public half, with the version it can be read from again.
    pub fn key_version(&self) -> KeyVersion {
        KeyVersion {
            key: self.public.clone(),
            version_id: self.version_id.clone(),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub(super) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros.min(bytes.len().saturating_sub(1)));
    bytes
}

/// A new RSA-2048 key as the secret holds it, from aws-lc-rs.
pub fn generate_key(kid: &str) -> Result<SigningKeySecret, KeyError> {
    if !valid_kid(kid) {
        return Err(KeyError::Kid);
    }
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
    let der = pair.as_der().map_err(|_| KeyError::Generation)?;
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
    Ok(SigningKeySecret {
        kid: kid.to_owned(),
        private_key: pem,
    })
}

/// The keys the secret holds, by stage, and older versions read by id.
#[derive(Debug, Clone, Default)]
pub struct Signer {
    pub current: Option<SigningKey>,
    pub previous: Option<SigningKey>,
    pub pending: Option<SigningKey>,
    /// Versions that hold no stage any more but may still have to sign: the
    /// newer keys have not been published for the lead time yet.
    pub older: Vec<SigningKey>,
}

impl Signer {
    /// Every key held, newest stage first.
    pub fn keys(&self) -> impl Iterator<Item = &SigningKey> {
        [&self.current, &self.previous, &self.pending]
            .into_iter()
            .flatten()
            .chain(&self.older)
    }

    /// The key named `kid`, if held.
    pub fn key(&self, kid: &str) -> Option<&SigningKey> {
        self.keys().find(|key| key.kid() == kid)
    }

    /// The stages' keys, to publish (each once).
    pub fn key_versions(&self) -> Vec<KeyVersion> {
        let mut keys: Vec<KeyVersion> = Vec::new();
        for key in [&self.current, &self.previous, &self.pending]
            .into_iter()
            .flatten()
        {
            if !keys.iter().any(|k| k.key.kid == key.kid) {
                keys.push(key.key_version());
            }
        }
        keys
    }

    /// Every stage's public half (the published set).
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.key_versions().into_iter().map(|k| k.key).collect()
    }
}

/// The published key that should sign at `now`: the newest one published
/// `lead_seconds` ago or more (API Gateway's and every other cache of the key
/// set has it by then); in a deployment younger than the lead, none is, and
/// the oldest one signs (the first key of a deployment signs at once, and
/// keeps signing until a newer one has been public for the lead).
pub fn preferred_key(
    published: &[PublishedKey],
    lead_seconds: i64,
    now: i64,
) -> Option<&PublishedKey> {
    let qualified = published
        .iter()
        .filter(|p| now - p.published_at >= lead_seconds)
        .max_by(|a, b| (a.published_at, &a.key.kid).cmp(&(b.published_at, &b.key.kid)));
    qualified.or_else(|| {
        published
            .iter()
            .min_by(|a, b| (a.published_at, &a.key.kid).cmp(&(b.published_at, &b.key.kid)))
    })
}

/// Which key signs at `now`: the `preferred_key` if it is held; else the
/// next best held key in the same order (newest qualified first, then oldest
/// first); `AWSCURRENT` when no published key is held (nothing published yet).
pub fn choose_signer<'a>(
    signer: &'a Signer,
    published: &[PublishedKey],
    lead_seconds: i64,
    now: i64,
) -> Option<&'a SigningKey> {
    let mut qualified: Vec<&PublishedKey> = published
        .iter()
        .filter(|p| now - p.published_at >= lead_seconds)
        .collect();
    qualified.sort_by(|a, b| (b.published_at, &b.key.kid).cmp(&(a.published_at, &a.key.kid)));
    let mut young: Vec<&PublishedKey> = published
        .iter()
        .filter(|p| now - p.published_at < lead_seconds)
        .collect();
    young.sort_by(|a, b| (a.published_at, &a.key.kid).cmp(&(b.published_at, &b.key.kid)));
    let order: Vec<&PublishedKey> = if qualified.is_empty() {
        young
    } else {
        qualified
    };
    order
        .into_iter()
        .find_map(|p| signer.key(&p.key.kid))
        .or(signer.current.as_ref())
}
