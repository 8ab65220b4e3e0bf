//! From a bearer token to the session it names: the opaque token directly, a
//! JWT after every check of the contract. Shared by every route that takes a
//! token and by the authorizer.

use tracing::{debug, warn};

use crate::domain::account::UserId;
use crate::domain::jwt::{JwtRefusal, JwtSettings, header_kid, verify};
use crate::domain::time::epoch_millis;
use crate::domain::time::epoch_seconds;
use crate::domain::token::{Bearer, TokenKey};
use crate::ports::keys::PublicKeyStore;
use crate::services::published_keys::PublishedKeys;

/// The session a token names, and the user a JWT says it belongs to (checked
/// against the session once it is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub key: TokenKey,
    pub expected_user: Option<UserId>,
}

/// Why a token names no session we will read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Jwt(JwtRefusal),
    /// The published keys could not be read.
    Unavailable,
}

/// How JWTs are checked here: `ISSUER`/`AUDIENCE` and a cache of the
/// published keys. Without an issuer every JWT is refused.
#[derive(Debug, Default)]
pub struct TokenCheck {
    settings: Option<JwtSettings>,
    keys: PublishedKeys,
}

impl TokenCheck {
    pub fn new(settings: Option<JwtSettings>) -> Self {
        Self {
            settings,
            keys: PublishedKeys::new(),
        }
    }

    pub fn settings(&self) -> Option<&JwtSettings> {
        self.settings.as_ref()
    }

    pub fn keys(&self) -> &PublishedKeys {
        &self.keys
    }

    /// The session `bearer` names, if its JWT passes every check.
    pub async fn session_ref(
        &self,
        store: &impl PublicKeyStore,
        bearer: &Bearer,
    ) -> Result<SessionRef, Refused> {
        let jwt = match bearer {
            Bearer::Opaque(token) => {
                return Ok(SessionRef {
                    key: token.key(),
                    expected_user: None,
                });
            }
            Bearer::Jwt(jwt) => jwt,
        };
        let outcome = self.check_jwt(store, jwt).await;
        if let Err(Refused::Jwt(reason)) = &outcome {
            debug!(%reason, "JWT refused");
        }
        outcome
    }

    async fn check_jwt(
        &self,
        store: &impl PublicKeyStore,
        jwt: &str,
    ) -> Result<SessionRef, Refused> {
        let settings = self
            .settings
            .as_ref()
            .ok_or(Refused::Jwt(JwtRefusal::NoIssuer))?;
        let kid = header_kid(jwt).map_err(Refused::Jwt)?;
        let key = match self.keys.key(store, &kid, epoch_millis()).await {
            Ok(Some(key)) => key,
            Ok(None) => return Err(Refused::Jwt(JwtRefusal::UnknownKid)),
            Err(err) => {
                warn!(error = %err, "reading the published keys failed");
                return Err(Refused::Unavailable);
            }
        };
        let verified =
            verify(jwt, &key.decoding_key(), settings, epoch_seconds()).map_err(Refused::Jwt)?;
        Ok(SessionRef {
            key: verified.sid.sid_key(),
            expected_user: Some(verified.user_id),
        })
    }
}
