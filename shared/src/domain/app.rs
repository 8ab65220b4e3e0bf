//! The team's WeChat apps (`WECHAT_APPS`): mini-programs, whose users log in
//! with `wx.login` and `jscode2session`, and apps whose users sign in through
//! WeChat's OAuth 2.0 (official-account H5 pages, website QR login, mobile
//! apps). WeChat gives a user one openid per app; the first app listed is the
//! default, and the one a session written before several apps belongs to.

use std::fmt;

use serde::Serialize;

/// A WeChat appid: `wx` and 16 ASCII letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AppId(String);

const APPID_PREFIX: &str = "wx";
const APPID_CHARS: usize = 16;

impl AppId {
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(APPID_PREFIX)?;
        (rest.len() == APPID_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an app's users sign in, and so what its sessions can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// `wx.login` → `jscode2session`: a session_key, open data, phone numbers.
    MiniProgram,
    /// WeChat's OAuth 2.0 → `sns/oauth2/access_token`: an openid (and a
    /// unionid when bound), no session_key.
    OAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: AppId,
    pub kind: AppKind,
}

impl App {
    pub fn is_mini_program(&self) -> bool {
        self.kind == AppKind::MiniProgram
    }
}

/// What is wrong with a list of apps (the variable is named by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppsError {
    #[error("lists no app")]
    Empty,
    #[error("{0:?} is not an appid (wx followed by 16 ASCII letters or digits)")]
    NotAnAppid(String),
    #[error("{0:?} is not a kind of app (only :oauth may follow an appid)")]
    UnknownKind(String),
    #[error("lists {0} twice")]
    Duplicate(String),
}

/// The apps a deployment serves, in the order listed: never empty, each
/// appid once, the first the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apps(Vec<App>);

impl Apps {
    /// `WECHAT_APPS`: comma-separated `appid` (a mini-program) or
    /// `appid:oauth`; spaces around items are ignored.
    pub fn parse(list: &str) -> Result<Self, AppsError> {
        let mut apps: Vec<App> = Vec::new();
        for item in list.split(',').map(str::trim) {
            let (appid, kind) = match item.split_once(':') {
                None => (item, AppKind::MiniProgram),
                Some((appid, "oauth")) => (appid, AppKind::OAuth),
                Some((_, kind)) => return Err(AppsError::UnknownKind(kind.to_owned())),
            };
            let id = AppId::parse(appid).ok_or_else(|| AppsError::NotAnAppid(appid.to_owned()))?;
            if apps.iter().any(|app| app.id == id) {
                return Err(AppsError::Duplicate(id.0));
            }
            apps.push(App { id, kind });
        }
        if apps.is_empty() {
            return Err(AppsError::Empty);
        }
        Ok(Self(apps))
    }

    /// One mini-program: what `WECHAT_APPID` alone means.
    pub fn single(id: AppId) -> Self {
        Self(vec![App {
            id,
            kind: AppKind::MiniProgram,
        }])
    }

    /// The first app listed.
    pub fn default_app(&self) -> &App {
        &self.0[0]
    }

    pub fn get(&self, appid: &str) -> Option<&App> {
        self.0.iter().find(|app| app.id.as_str() == appid)
    }

    /// The app of a session or token as stored: none means it was written
    /// before several apps, by the default app; an app no longer listed is
    /// `None` (its sessions are refused).
    pub fn of_stored(&self, appid: Option<&AppId>) -> Option<&App> {
        match appid {
            None => Some(self.default_app()),
            Some(appid) => self.get(appid.as_str()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.0.iter()
    }

    /// The mini-programs: the apps that have an access token of their own.
    pub fn mini_programs(&self) -> impl Iterator<Item = &App> {
        self.0.iter().filter(|app| app.is_mini_program())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "wx1111111111111111";
    const B: &str = "wx2222222222222222";
    const C: &str = "wx3333333333333333";

    #[test]
    fn the_contract_example_parses_in_order() {
        let apps = Apps::parse(&format!("{A},{B}, {C}:oauth")).unwrap();
        let listed: Vec<(&str, AppKind)> =
            apps.iter().map(|app| (app.id.as_str(), app.kind)).collect();
        assert_eq!(
            listed,
            [
                (A, AppKind::MiniProgram),
                (B, AppKind::MiniProgram),
                (C, AppKind::OAuth)
            ]
        );
        assert_eq!(apps.default_app().id.as_str(), A);
        assert_eq!(apps.mini_programs().count(), 2);
        assert_eq!(apps.get(C).map(|app| app.kind), Some(AppKind::OAuth));
        assert_eq!(apps.get("wx4444444444444444"), None);
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        for (list, expected) in [
            ("", AppsError::NotAnAppid(String::new())),
            ("wx123", AppsError::NotAnAppid("wx123".into())),
            (
                "wx11111111111111112",
                AppsError::NotAnAppid("wx11111111111111112".into()),
            ),
            (
                "xx1111111111111111",
                AppsError::NotAnAppid("xx1111111111111111".into()),
            ),
            (
                "wx111111111111111-",
                AppsError::NotAnAppid("wx111111111111111-".into()),
            ),
            (&format!("{A}:web"), AppsError::UnknownKind("web".into())),
            (
                &format!("{A}:OAUTH"),
                AppsError::UnknownKind("OAUTH".into()),
            ),
            (&format!("{A},{A}:oauth"), AppsError::Duplicate(A.into())),
            (&format!("{A},,{B}"), AppsError::NotAnAppid(String::new())),
        ] {
            assert_eq!(Apps::parse(list), Err(expected), "{list:?}");
        }
    }

    #[test]
    fn a_stored_app_resolves_to_the_default_or_to_nothing() {
        let apps = Apps::parse(&format!("{A},{B}:oauth")).unwrap();
        assert_eq!(apps.of_stored(None).unwrap().id.as_str(), A);
        let b = AppId::parse(B).unwrap();
        assert_eq!(apps.of_stored(Some(&b)).unwrap().kind, AppKind::OAuth);
        let gone = AppId::parse(C).unwrap();
        assert_eq!(apps.of_stored(Some(&gone)), None);
    }
}
