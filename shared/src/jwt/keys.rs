//! The signing key: parsed once from its secret, its public half published.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
        })
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

/// The keys the secret holds, by stage.
#[derive(Debug, Clone, Default)]
pub struct Signer {
    pub current: Option<SigningKey>,
    pub previous: Option<SigningKey>,
    pub pending: Option<SigningKey>,
}

impl Signer {
    /// Every accepted key (the published set).
    pub fn public_keys(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = Vec::new();
        for key in [&self.current, &self.previous, &self.pending]
            .into_iter()
            .flatten()
        {
            if !keys.iter().any(|k| k.kid == key.kid) {
                keys.push(key.public.clone());
            }
        }
        keys
    }
}

/// Which key signs at `now`: `AWSCURRENT` once its public half has been
/// published `lead_seconds` (`current_published_at`, epoch seconds; `None`:
/// not yet published), else `AWSPREVIOUS`; the current at once when there is
/// no well-formed previous key (the first key of a deployment).
pub fn choose_signer(
    signer: &Signer,
    current_published_at: Option<i64>,
    lead_seconds: i64,
    now: i64,
) -> Option<&SigningKey> {
    let current = signer.current.as_ref()?;
    let Some(previous) = signer.previous.as_ref().filter(|p| p.kid != current.kid) else {
        return Some(current);
    };
    match current_published_at {
        Some(at) if now - at >= lead_seconds => Some(current),
        _ => Some(previous),
    }
}
