//! JWT access tokens: RS256, signed by `login`, checked offline by anyone with
//! the JWKS, and by wxauth against its session table too (so revocation on
//! wxauth's own routes stays instant).

mod keys;
mod published;

pub use keys::{
    KeyError, PublicKey, Signer, SigningKey, SigningKeySecret, choose_signer, generate_key,
    parse_stage, preferred_key, valid_kid,
};
pub use published::{KeyVersion, PublishedKey, merge_published};

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::domain::account::UserId;
use crate::domain::token::SessionToken;
pub use crate::domain::token::looks_like_jwt;

/// `ISSUER` and `AUDIENCE`: what a JWT must name to be ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
}

pub const DEFAULT_AUDIENCE: &str = "wxauth";

/// Exactly the contract's claims: nothing else goes in a token that travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub openid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub appid: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

/// A JWT we issued and every check but the session's passed: its session id
/// and the user it must belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    pub sid: SessionToken,
    pub user_id: UserId,
}

/// Why a JWT was refused (each is a 401; the reason goes to the log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtRefusal {
    #[error("not three base64url parts with a JSON header")]
    Malformed,
    #[error("alg is not RS256")]
    Algorithm,
    #[error("kid names no published key")]
    UnknownKid,
    #[error("the signature does not verify")]
    Signature,
    #[error("the claims are not ours (iss, aud, types)")]
    Claims,
    #[error("expired")]
    Expired,
    #[error("no ISSUER: JWTs are refused")]
    NoIssuer,
}

/// The header fields that decide which key checks the signature: `alg` must
/// be exactly RS256 before anything else is looked at.
pub fn header_kid(token: &str) -> Result<String, JwtRefusal> {
    let encoded = token.split('.').next().ok_or(JwtRefusal::Malformed)?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, encoded)
        .map_err(|_| JwtRefusal::Malformed)?;
    #[derive(Deserialize)]
    struct RawHeader {
        alg: String,
        kid: Option<String>,
    }
    let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| JwtRefusal::Malformed)?;
    if header.alg != "RS256" {
        return Err(JwtRefusal::Algorithm);
    }
    header.kid.ok_or(JwtRefusal::UnknownKid)
}

/// Checks a JWT against `key` (the published key its `kid` names): RS256
/// only, the signature, `iss`, `aud` (a string), `exp` strictly after `now`,
/// a well-formed `sub` and `sid`. The session's own checks come after.
pub fn verify(
    token: &str,
    key: &DecodingKey,
    settings: &JwtSettings,
    now: i64,
) -> Result<VerifiedJwt, JwtRefusal> {
    let mut validation = Validation::new(Algorithm::RS256);
    // Time, issuer and audience are checked below, on our clock and exactly.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|err| {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::InvalidSignature => JwtRefusal::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtRefusal::Algorithm,
            ErrorKind::Json(_) => JwtRefusal::Claims,
            _ => JwtRefusal::Malformed,
        }
    })?;
    if data.header.alg != Algorithm::RS256 {
        return Err(JwtRefusal::Algorithm);
    }
    let claims = data.claims;
    if claims.iss != settings.issuer || claims.aud != settings.audience {
        return Err(JwtRefusal::Claims);
    }
    if now >= claims.exp {
        return Err(JwtRefusal::Expired);
    }
    let sid = SessionToken::parse(&claims.sid).ok_or(JwtRefusal::Claims)?;
    let user_id = UserId::parse(&claims.sub).ok_or(JwtRefusal::Claims)?;
    Ok(VerifiedJwt { sid, user_id })
}

/// Signs `claims` with `key`: header `{"alg": "RS256", "typ": "JWT", "kid"}`.
pub fn sign(key: &SigningKey, claims: &Claims) -> Result<String, KeyError> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).map_err(|_| KeyError::Signing)
}

/// Signs a throwaway token with `key` and verifies it with the key's public
/// half: proof that the key can sign what checkers accept. Login runs it at
/// start-up, the rotation in `testSecret`.
pub fn sign_and_verify(key: &SigningKey) -> Result<(), String> {
    let settings = JwtSettings {
        issuer: "https://self-test.invalid".into(),
        audience: "self-test".into(),
    };
    let claims = Claims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub: "u_AAAAAAAAAAAAAAAAAAAAAA".into(),
        openid: "self-test".into(),
        unionid: None,
        appid: "self-test".into(),
        sid: "A".repeat(43),
        iat: 0,
        exp: i64::MAX / 2,
    };
    let jwt = sign(key, &claims).map_err(|err| err.to_string())?;
    verify(&jwt, &key.public_key().decoding_key(), &settings, 0)
        .map(|_| ())
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests;
