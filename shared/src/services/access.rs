//! From a bearer token to the session it names: the opaque token directly, a
//! JWT after every check of the contract. Shared by every route that takes a
//! token and by the authorizer.

use tracing::{debug, warn};

use crate::domain::account::UserId;
use crate::domain::app::{App, AppId, Apps};
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

/// A session of an app the function does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlistedApp;

/// Why a token names no session we will read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Jwt(JwtRefusal),
    /// The published keys could not be read.
    Unavailable,
}

/// How tokens are checked here: `ISSUER`/`AUDIENCE` and a cache of the
/// published keys (without an issuer every JWT is refused), and the apps
/// whose sessions this function serves (`WECHAT_APPS`; none listed: every
/// session, its app as stored).
#[derive(Debug, Default)]
pub struct TokenCheck {
    settings: Option<JwtSettings>,
    keys: PublishedKeys,
    apps: Option<Apps>,
}

impl TokenCheck {
    pub fn new(settings: Option<JwtSettings>) -> Self {
        Self {
            settings,
            keys: PublishedKeys::new(),
            apps: None,
        }
    }

    /// Serves only the sessions of `apps`; a session from before several
    /// apps is the default app's.
    pub fn with_apps(mut self, apps: Apps) -> Self {
        self.apps = Some(apps);
        self
    }

    pub fn apps(&self) -> Option<&Apps> {
        self.apps.as_ref()
    }

    /// The app of a session as this function sees it: `Err` for an app it
    /// does not list (its sessions are refused), `Ok(None)` where it lists
    /// none.
    pub fn app_of(&self, stored: Option<&AppId>) -> Result<Option<&App>, UnlistedApp> {
        match &self.apps {
            None => Ok(None),
            Some(apps) => apps.of_stored(stored).map(Some).ok_or(UnlistedApp),
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
