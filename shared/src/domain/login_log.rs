//! The login log: who logged in, refreshed, logged out or was deleted, when and
//! from where, kept `LOGIN_LOG_RETENTION_DAYS` (China's Cybersecurity Law art. 21
//! asks for network logs of at least six months). An entry never holds a token,
//! a session_key, an appsecret, a phone number or a raw openid.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::account::UserId;

/// Default retention: 180 days, six months.
pub const DEFAULT_RETENTION_DAYS: i64 = 180;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    Login,
    LoginRefused,
    Refresh,
    RefreshRefused,
    RefreshReused,
    Logout,
    /// A session revoked by a later login of the same user.
    Revoked,
    AccountDeleted,
    /// An identity of another app joined the account (its unionid).
    AppLinked,
    /// A login brought a unionid another account holds: nothing was linked.
    AccountConflict,
    /// An operator merged two accounts; both logs say so.
    AccountMerged,
}

impl LogEvent {
    pub const ALL: [LogEvent; 11] = [
        Self::Login,
        Self::LoginRefused,
        Self::Refresh,
        Self::RefreshRefused,
        Self::RefreshReused,
        Self::Logout,
        Self::Revoked,
        Self::AccountDeleted,
        Self::AppLinked,
        Self::AccountConflict,
        Self::AccountMerged,
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginRefused => "login_refused",
            Self::Refresh => "refresh",
            Self::RefreshRefused => "refresh_refused",
            Self::RefreshReused => "refresh_reused",
            Self::Logout => "logout",
            Self::Revoked => "revoked",
            Self::AccountDeleted => "account_deleted",
            Self::AppLinked => "app_linked",
            Self::AccountConflict => "account_conflict",
            Self::AccountMerged => "account_merged",
        }
    }
}

/// Where a request came from, as the request context says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The mini-program's device, as `POST /login`'s optional `device` sends it
/// (`wx.getDeviceInfo` / `wx.getAppBaseInfo`): only these fields are kept.
pub const DEVICE_FIELDS: [&str; 7] = [
    "brand",
    "model",
    "system",
    "platform",
    "SDKVersion",
    "version",
    "language",
];
pub const MAX_DEVICE_FIELD_CHARS: usize = 64;

/// The kept fields of a `device` object, each a string of at most 64
/// characters; other fields are dropped. `Err` names what is wrong.
pub fn device_fields(device: &Value) -> Result<Map<String, Value>, String> {
    let Value::Object(fields) = device else {
        return Err("device must be a JSON object (from wx.getDeviceInfo).".into());
    };
    let mut kept = Map::new();
    for name in DEVICE_FIELDS {
        match fields.get(name) {
            None => {}
            Some(Value::String(text)) if text.chars().count() <= MAX_DEVICE_FIELD_CHARS => {
                kept.insert(name.to_owned(), Value::String(text.clone()));
            }
            Some(_) => {
                return Err(format!(
                    "device.{name} must be a string of at most {MAX_DEVICE_FIELD_CHARS} characters."
                ));
            }
        }
    }
    Ok(kept)
}

/// One entry, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub user_id: UserId,
    /// ISO-8601 UTC with milliseconds, `#` and a random suffix: the sort key,
    /// in time order, never colliding.
    pub at: String,
    pub event: LogEvent,
    /// `ok`, or the contract's error code.
    pub outcome: String,
    pub appid: Option<String>,
    pub origin: Origin,
    pub device: Option<Map<String, Value>>,
    /// The other account an `account_conflict` or `account_merged` names.
    pub other_user_id: Option<UserId>,
    /// WeChat's risk rank of a sign-up (`RISK_CONTROL`).
    pub risk_rank: Option<u8>,
    /// Epoch seconds: the event's time plus the retention.
    pub expires_at: i64,
}

impl LogEntry {
    /// An entry for `event` at `now_ms` (epoch milliseconds).
    pub fn new(
        user_id: UserId,
        event: LogEvent,
        outcome: &'static str,
        now_ms: i64,
        retention_days: i64,
    ) -> Result<Self, getrandom::Error> {
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix)?;
        Ok(Self {
            user_id,
            at: format!("{}#{}", iso8601_millis(now_ms), hex::encode(suffix)),
            event,
            outcome: outcome.to_owned(),
            appid: None,
            origin: Origin::default(),
            device: None,
            other_user_id: None,
            risk_rank: None,
            expires_at: now_ms.div_euclid(1000) + retention_days * 86_400,
        })
    }

    /// An entry for another event at the same time, with its own suffix: what
    /// one request logs twice (a login and the session it revoked). It says
    /// nothing of the first entry's sign-up (the risk rank).
    pub fn sibling(&self, event: LogEvent) -> Result<Self, getrandom::Error> {
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix)?;
        let time = self.at.split('#').next().unwrap_or_default();
        Ok(Self {
            at: format!("{time}#{}", hex::encode(suffix)),
            event,
            risk_rank: None,
            ..self.clone()
        })
    }

    /// The sibling entry `event` of another account, naming this entry's
    /// account as `otherUserId` (a conflict, a merge): each account's log
    /// tells the other side.
    pub fn about_other(
        &self,
        event: LogEvent,
        user_id: &UserId,
        other: &UserId,
    ) -> Result<Self, getrandom::Error> {
        Ok(Self {
            user_id: user_id.clone(),
            other_user_id: Some(other.clone()),
            ..self.sibling(event)?
        })
    }

    /// The retention this entry was written with (whole days from its time
    /// to its expiry), if its time reads as ours.
    pub fn retention_days(&self) -> Option<i64> {
        let written = parse_iso8601_millis(self.at.split('#').next()?)?;
        let seconds = self.expires_at - written.div_euclid(1000);
        (seconds > 0).then(|| (seconds + 43_200) / 86_400)
    }

    pub fn with_appid(mut self, appid: Option<&str>) -> Self {
        self.appid = appid.map(str::to_owned);
        self
    }

    pub fn with_origin(mut self, origin: &Origin) -> Self {
        self.origin = origin.clone();
        self
    }

    pub fn with_device(mut self, device: Option<Map<String, Value>>) -> Self {
        self.device = device.filter(|fields| !fields.is_empty());
        self
    }
}

/// An entry as the operator tool prints it.
impl Serialize for LogEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("userId", &self.user_id)?;
        map.serialize_entry("at", &self.at)?;
        map.serialize_entry("event", &self.event)?;
        map.serialize_entry("outcome", &self.outcome)?;
        if let Some(appid) = &self.appid {
            map.serialize_entry("appid", appid)?;
        }
        if let Some(ip) = &self.origin.source_ip {
            map.serialize_entry("sourceIp", ip)?;
        }
        if let Some(agent) = &self.origin.user_agent {
            map.serialize_entry("userAgent", agent)?;
        }
        if let Some(device) = &self.device {
            map.serialize_entry("device", device)?;
        }
        if let Some(other) = &self.other_user_id {
            map.serialize_entry("otherUserId", other)?;
        }
        if let Some(rank) = self.risk_rank {
            map.serialize_entry("riskRank", &rank)?;
        }
        map.serialize_entry("expiresAt", &self.expires_at)?;
        map.end()
    }
}

/// `2026-11-30T16:04:05.123Z` for epoch milliseconds (UTC, proleptic
/// Gregorian), always with three fraction digits so that entries sort as text.
pub fn iso8601_millis(epoch_ms: i64) -> String {
    let (days, ms_of_day) = (
        epoch_ms.div_euclid(86_400_000),
        epoch_ms.rem_euclid(86_400_000),
    );
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hours, minutes) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (seconds, millis) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z")
}

/// Epoch milliseconds of `iso8601_millis`'s form, `2026-11-30T16:04:05.123Z`.
pub fn parse_iso8601_millis(text: &str) -> Option<i64> {
    if text.len() != 24 || !text.is_ascii() || !text.ends_with('Z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hours, minutes) = (num(11..13)?, num(14..16)?);
    let (seconds, millis) = (num(17..19)?, num(20..23)?);
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_iso8601_utc_with_milliseconds() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1795334400` → Sun Nov 22 08:00:00 UTC 2026.
        assert_eq!(
            iso8601_millis(1_795_334_400_007),
            "2026-11-22T08:00:00.007Z"
        );
        assert_eq!(iso8601_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(4_107_542_399_999),
            "2100-02-28T23:59:59.999Z"
        );
        // Text order is time order.
        assert!(iso8601_millis(1_795_334_400_999) < iso8601_millis(1_795_334_401_000));
        // And back.
        for ms in [0, 1_795_334_400_007, 951_782_400_000, 4_107_542_399_999] {
            assert_eq!(parse_iso8601_millis(&iso8601_millis(ms)), Some(ms));
        }
        assert_eq!(parse_iso8601_millis("2026-11-30"), None);
    }

    #[test]
    fn entries_never_collide_and_expire_after_the_retention() {
        let user = UserId::generate().unwrap();
        let a = LogEntry::new(user.clone(), LogEvent::Login, "ok", 1_000_500, 180).unwrap();
        let b = LogEntry::new(user, LogEvent::Login, "ok", 1_000_500, 180).unwrap();
        assert_ne!(a.at, b.at);
        assert!(a.at.starts_with("1970-01-01T00:16:40.500Z#"));
        assert_eq!(a.expires_at, 1000 + 180 * 86_400);
        assert_eq!(a.retention_days(), Some(180));
    }

    #[test]
    fn only_the_kept_device_fields_are_kept_and_checked() {
        let kept = device_fields(&json!({
            "brand": "Apple", "model": "iPhone 15", "system": "iOS 18.1", "platform": "ios",
            "SDKVersion": "3.6.0", "version": "8.0.50", "language": "zh_CN",
            "pixelRatio": 3, "benchmarkLevel": {"nested": true}
        }))
        .unwrap();
        assert_eq!(kept.len(), 7);
        assert!(!kept.contains_key("pixelRatio"));
        assert_eq!(device_fields(&json!({})).unwrap().len(), 0);
        for bad in [
            json!("iPhone"),
            json!(["brand"]),
            json!({"brand": 7}),
            json!({"model": "x".repeat(65)}),
            json!({"system": {"name": "iOS"}}),
            // A kept field that is there must be a string: null is not one.
            json!({"system": null}),
        ] {
            assert!(device_fields(&bad).is_err(), "{bad}");
        }
        assert!(device_fields(&json!({"model": "型".repeat(64)})).is_ok());
    }
}
