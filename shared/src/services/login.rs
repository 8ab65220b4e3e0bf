//! A login, without HTTP: the code to WeChat's session (retried, the
//! appsecret refetched when refused), and the write that keeps it (a fresh
//! token, collisions redrawn, and a read-back when the write's answer is lost).

use std::time::Duration;

use tracing::{info, warn};

use serde_json::{Map, Value};

use crate::domain::account::UserId;
use crate::domain::app::App;
use crate::domain::login_log::{LogEntry, LogEvent, Origin};
use crate::domain::refresh::{RefreshFamily, RefreshKey, RefreshToken};
use crate::domain::session::Session;
use crate::domain::time::{epoch_millis, epoch_seconds};
use crate::domain::token::{SessionToken, TokenKey};
use crate::domain::wechat::SignedIn;
use crate::ports::errors::{StoreError, Upstream, UpstreamError};
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, NewAccount, RefreshIssue};
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics::{self, Metric};

/// A token collision is a 2^-128 event; a second one in a row means a broken RNG.
pub const TOKEN_ATTEMPTS: u32 = 3;
/// The end of the answer budget belongs to the session write, never to WeChat:
/// WeChat's retries may take everything before it, and a write that starts with
/// no time left times out after WeChat has spent the code. A single-session
/// login is a GetItem and a TransactWriteItems (a few ms each; contention rounds
/// and the SDK's retries of a throttled call take longer).
pub const SESSION_WRITE_BUDGET: Duration = Duration::from_millis(1500);
/// Kept after the write for one consistent read, when the write's answer did
/// not come in time: a transaction already sent is not cancelled by giving up
/// on it, and may have committed.
pub const READ_BACK_BUDGET: Duration = Duration::from_millis(500);

/// Where session tokens come from: the OS CSPRNG, unless a test forces a collision.
pub type TokenSource = Box<dyn Fn() -> Result<SessionToken, getrandom::Error> + Send + Sync>;

/// A fresh session's secret and its table key: the opaque token, or in JWT
/// mode the JWT's `sid`.
pub fn session_key_of(token: &SessionToken, jwt_mode: bool) -> TokenKey {
    if jwt_mode {
        token.sid_key()
    } else {
        token.key()
    }
}

/// A token from `tokens`; a failing random source is an outage, not a 500.
pub fn draw_token(tokens: &TokenSource) -> Result<SessionToken, UpstreamError> {
    tokens().map_err(|err| {
        tracing::error!(error = %err, "the OS random source failed");
        UpstreamError::Unavailable(Upstream::SessionTable)
    })
}

/// A login the store wrote.
pub struct LoggedIn {
    pub token: SessionToken,
    pub user_id: UserId,
    pub new_user: bool,
    /// The account's unionid: never one another account holds.
    pub unionid: Option<String>,
    /// The login's identity joined the account by its unionid.
    pub linked: bool,
    /// Another account holds the unionid the login brought.
    pub conflict_with: Option<UserId>,
    /// The session as written (under the account's userId).
    pub session: Session,
}

/// What a login's write came to.
pub enum Stored {
    LoggedIn(Box<LoggedIn>),
    /// The account is disabled: the store logged the refusal.
    Disabled,
    /// The login would create an account and was asked to say so first
    /// (`NewAccount::AskFirst`): nothing was written.
    WouldCreate,
}

/// A login's parts before its write: the session (under a candidate userId,
/// the one a first login gives the account), its log entry, and its refresh
/// token when refresh tokens are on.
pub struct Prepared {
    pub session: Session,
    pub log: LogEntry,
    pub refresh: Option<(RefreshToken, RefreshFamily, RefreshKey)>,
    pub refresh_expires_at: i64,
}

/// What a login's parts are made of, beside WeChat's answer.
pub struct LoginSettingsRef<'a> {
    pub app: &'a App,
    pub session_ttl_seconds: i64,
    pub log_retention_days: i64,
    /// 0: refresh tokens off.
    pub refresh_ttl_seconds: i64,
}

impl Prepared {
    /// Draws the candidate userId, the log entry's suffix and the refresh
    /// token from the OS CSPRNG: a failing source is an outage.
    pub fn new(
        wx: &SignedIn,
        settings: &LoginSettingsRef<'_>,
        origin: &Origin,
        device: Option<Map<String, Value>>,
    ) -> Result<Self, UpstreamError> {
        let random_failed = |err: getrandom::Error| {
            tracing::error!(error = %err, "the OS random source failed");
            UpstreamError::Unavailable(Upstream::SessionTable)
        };
        let candidate = UserId::generate().map_err(random_failed)?;
        let log = LogEntry::new(
            candidate.clone(),
            LogEvent::Login,
            "ok",
            epoch_millis(),
            settings.log_retention_days,
        )
        .map_err(random_failed)?
        .with_appid(Some(settings.app.id.as_str()))
        .with_origin(origin)
        .with_device(device);
        let refresh = match settings.refresh_ttl_seconds > 0 {
            true => {
                let family = RefreshFamily::generate().map_err(random_failed)?;
                let token = RefreshToken::issue(&family).map_err(random_failed)?;
                let key = token.key();
                Some((token, family, key))
            }
            false => None,
        };
        let now = epoch_seconds();
        Ok(Self {
            session: Session {
                user_id: candidate,
                appid: Some(settings.app.id.clone()),
                openid: wx.openid.clone(),
                unionid: wx.unionid.clone(),
                session_key: wx.session_key.clone(),
                session_key_expires_at: None,
                family: refresh.as_ref().map(|(_, family, _)| family.clone()),
                created_at: now,
                expires_at: now + settings.session_ttl_seconds,
            },
            log,
            refresh,
            refresh_expires_at: now + settings.refresh_ttl_seconds,
        })
    }

    /// The write these parts make, with one session per identity or not.
    pub fn plan(
        &self,
        single_session: bool,
        jwt_mode: bool,
        default_app: bool,
        new_account: NewAccount,
    ) -> LoginPlan<'_> {
        LoginPlan {
            session: self.session.clone(),
            default_app,
            new_account,
            single_session,
            log: &self.log,
            refresh: self.refresh.as_ref().map(|(_, family, key)| RefreshIssue {
                key,
                family,
                expires_at: self.refresh_expires_at,
            }),
            jwt_mode,
        }
    }
}

/// What one login writes, but for its token: drawn here.
pub struct LoginPlan<'a> {
    pub session: Session,
    pub default_app: bool,
    pub new_account: NewAccount,
    pub single_session: bool,
    pub log: &'a LogEntry,
    pub refresh: Option<RefreshIssue<'a>>,
    pub jwt_mode: bool,
}

/// Stores the session under a fresh token, with the account and the log
/// entry. A 200 is only ever sent once the login is known to be stored, so
/// every token handed out works: when the write's answer does not come (in
/// time, or at all), one consistent read of the new key tells whether it
/// committed; the key comes from a fresh 256-bit token, so an item there is
/// this write's.
pub async fn store_login(
    store: &impl LoginStore,
    tokens: &TokenSource,
    plan: LoginPlan<'_>,
    deadline: Deadline,
) -> Result<Stored, UpstreamError> {
    let unavailable = || UpstreamError::Unavailable(Upstream::SessionTable);
    for _ in 0..TOKEN_ATTEMPTS {
        let token = draw_token(tokens)?;
        let key = session_key_of(&token, plan.jwt_mode);
        let write = LoginWrite {
            key: &key,
            session: &plan.session,
            default_app: plan.default_app,
            single_session: plan.single_session,
            log: Some(plan.log),
            refresh: plan.refresh,
            new_account: plan.new_account,
        };
        match deadline
            .before(READ_BACK_BUDGET)
            .run(store.login(&write))
            .await
        {
            Some(Ok(LoginOutcome::LoggedIn {
                user_id,
                new_user,
                unionid,
                linked,
                conflict_with,
            })) => {
                let session = Session {
                    user_id: user_id.clone(),
                    unionid: unionid.clone(),
                    ..plan.session
                };
                return Ok(Stored::LoggedIn(Box::new(LoggedIn {
                    token,
                    user_id,
                    new_user,
                    unionid,
                    linked,
                    conflict_with,
                    session,
                })));
            }
            Some(Ok(LoginOutcome::Disabled { .. })) => return Ok(Stored::Disabled),
            Some(Ok(LoginOutcome::WouldCreate)) => return Ok(Stored::WouldCreate),
            Some(Err(StoreError::AlreadyExists)) => {
                warn!("session token collided with an existing item; drawing another");
            }
            Some(Err(err @ StoreError::Refused(_))) => {
                warn!(error = %err, "session write refused");
                return Err(unavailable());
            }
            Some(Err(err)) => {
                warn!(error = %err, "session write failed; reading back whether it committed");
                return committed_anyway(store, token, &key, &plan.session, deadline).await;
            }
            None => {
                warn!("session write ran out of time; reading back whether it committed");
                return committed_anyway(store, token, &key, &plan.session, deadline).await;
            }
        }
    }
    tracing::error!("session token collided {TOKEN_ATTEMPTS} times in a row");
    Err(unavailable())
}

/// After a write whose outcome is unknown: the login if its session is in
/// the table (read consistently), else 503. The session carries the
/// account's userId: the candidate's means this login created the account.
async fn committed_anyway(
    store: &impl LoginStore,
    token: SessionToken,
    key: &TokenKey,
    written: &Session,
    deadline: Deadline,
) -> Result<Stored, UpstreamError> {
    let unavailable = UpstreamError::Unavailable(Upstream::SessionTable);
    match deadline.run(store.get(key)).await {
        Some(Ok(Some(stored))) => {
            info!("the session write committed though its answer was lost");
            metrics::count(Metric::SessionWriteConfirmed, &[]);
            // What the write decided beyond the session (a link, a
            // conflict) is in its log entries, not in this answer.
            Ok(Stored::LoggedIn(Box::new(LoggedIn {
                new_user: stored.user_id == written.user_id,
                user_id: stored.user_id.clone(),
                unionid: stored.unionid.clone(),
                linked: false,
                conflict_with: None,
                session: Session {
                    user_id: stored.user_id,
                    unionid: stored.unionid,
                    ..written.clone()
                },
                token,
            })))
        }
        Some(Ok(None)) => Err(unavailable),
        Some(Err(err)) => {
            warn!(error = %err, "reading back the session failed");
            Err(unavailable)
        }
        None => {
            warn!("reading back the session ran out of time");
            Err(unavailable)
        }
    }
}
