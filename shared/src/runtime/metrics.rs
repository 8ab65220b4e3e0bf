//! Metrics in CloudWatch Embedded Metric Format: one JSON object per line on
//! stdout, which CloudWatch Logs turns into metrics in namespace `wxauth` with
//! the dimension `Function` (the Lambda function's name) and each record's own.
//!
//! Only a Lambda sandbox emits them (`AWS_LAMBDA_FUNCTION_NAME` set): the local
//! server and in-process tests print none. Dimension values come from fixed
//! sets (error codes, WeChat errcodes, API names, decisions); no openid, token or
//! phone number is ever a dimension or a value.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "wxauth";

/// What a record measures, and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Answered requests; dimension `Outcome` (`ok` or the contract's error code).
    Requests,
    /// Calls to WeChat; dimensions `Api` and `Result` (the errcode, or
    /// `timeout`, `transport`, `malformed`).
    WeChatCalls,
    /// Their latency, milliseconds.
    WeChatLatency,
    /// getStableAccessToken calls; dimension `Mode` (`normal` or `forced`).
    AccessTokenFetches,
    /// A forced refresh was needed and not allowed (another ran within 30 s).
    ForcedRefreshRefused,
    /// A one-time code (wx.login's, or getPhoneNumber's) WeChat refused as
    /// invalid or used after our own attempt with it failed in transit: our
    /// retry, not the client, spent it. Dimension `Api` (`jscode2session`,
    /// `getuserphonenumber`).
    CodeSpentByOurRetry,
    /// A login's session write whose answer was lost (timed out, or failed in
    /// transit) was found committed by the read that followed: answered 200.
    SessionWriteConfirmed,
    /// Accounts created by a first login.
    AccountsCreated,
    /// Accounts deleted (`DELETE /account`).
    AccountsDeleted,
    /// Sessions made by `POST /refresh`.
    Refreshes,
    /// A spent refresh token presented after its grace: its family revoked.
    RefreshReuse,
    /// Authorizer answers; dimension `Decision` (`allow` or `deny`).
    AuthorizerDecisions,
    /// Authorizer invocations failed because the table could not be read.
    AuthorizerErrors,
    /// `POST /login` answers by app; dimensions `App` (a listed appid, or
    /// `unknown`) and `Outcome`.
    Logins,
    /// An identity of another app joined an account by its unionid.
    AppLinked,
    /// A login brought a unionid another account holds (nothing linked; an
    /// operator's merge resolves it).
    AccountConflicts,
    /// A sign-up refused by `RISK_CONTROL=enforce`.
    RiskRejected,
    /// The risk rank could not be read in time (any errcode, a malformed
    /// answer, more than 1 s): the sign-up went on without one.
    RiskCheckFailed,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "Requests",
            Self::WeChatCalls => "WeChatCalls",
            Self::WeChatLatency => "WeChatLatency",
            Self::AccessTokenFetches => "AccessTokenFetches",
            Self::ForcedRefreshRefused => "ForcedRefreshRefused",
            Self::CodeSpentByOurRetry => "CodeSpentByOurRetry",
            Self::SessionWriteConfirmed => "SessionWriteConfirmed",
            Self::AccountsCreated => "AccountsCreated",
            Self::AccountsDeleted => "AccountsDeleted",
            Self::Refreshes => "Refreshes",
            Self::RefreshReuse => "RefreshReuse",
            Self::AuthorizerDecisions => "AuthorizerDecisions",
            Self::AuthorizerErrors => "AuthorizerErrors",
            Self::Logins => "Logins",
            Self::AppLinked => "AppLinked",
            Self::AccountConflicts => "AccountConflicts",
            Self::RiskRejected => "RiskRejected",
            Self::RiskCheckFailed => "RiskCheckFailed",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::WeChatLatency => "Milliseconds",
            _ => "Count",
        }
    }
}

/// The function name, once: `None` outside a Lambda sandbox.
fn function() -> Option<&'static str> {
    static FUNCTION: OnceLock<Option<String>> = OnceLock::new();
    FUNCTION
        .get_or_init(|| {
            std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .as_deref()
}

/// Counts one occurrence of `metric` with its dimensions.
pub fn count(metric: Metric, dimensions: &[(&'static str, &str)]) {
    emit(&[(metric, 1.0)], dimensions);
}

/// One WeChat call: its count and latency, by API and result.
pub fn wechat_call(api: &'static str, result: &str, latency: Duration) {
    emit(
        &[
            (Metric::WeChatCalls, 1.0),
            (Metric::WeChatLatency, latency.as_secs_f64() * 1e3),
        ],
        &[("Api", api), ("Result", result)],
    );
}

/// Writes one record. Each metric is published per `Function` plus each of the
/// dimensions alone, and per `Function` with all of them, so alarms can watch a
/// single result (say WeChat's -1) across every API.
fn emit(values: &[(Metric, f64)], dimensions: &[(&'static str, &str)]) {
    let Some(function) = function() else {
        return;
    };
    let line = record(function, epoch_millis(), values, dimensions);
    // One write per line: CloudWatch reads one JSON object per line.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn record(
    function: &str,
    timestamp_ms: u128,
    values: &[(Metric, f64)],
    dimensions: &[(&'static str, &str)],
) -> Value {
    let mut sets: Vec<Vec<&str>> = vec![vec!["Function"]];
    if !dimensions.is_empty() {
        let all: Vec<&str> = std::iter::once("Function")
            .chain(dimensions.iter().map(|(name, _)| *name))
            .collect();
        sets.push(all);
        if dimensions.len() > 1 {
            sets.extend(dimensions.iter().map(|(name, _)| vec!["Function", *name]));
        }
    }
    let metrics: Vec<Value> = values
        .iter()
        .map(|(metric, _)| json!({"Name": metric.name(), "Unit": metric.unit()}))
        .collect();
    let mut object = Map::new();
    object.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": metrics}],
        }),
    );
    object.insert("Function".into(), json!(function));
    for (name, value) in dimensions {
        object.insert((*name).into(), json!(value));
    }
    for (metric, value) in values {
        object.insert(metric.name().into(), json!(value));
    }
    Value::Object(object)
}

fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_embedded_metric_format() {
        let line = record(
            "wxauth-LoginFunction-x",
            1_795_334_400_000,
            &[(Metric::WeChatCalls, 1.0), (Metric::WeChatLatency, 12.5)],
            &[("Api", "jscode2session"), ("Result", "-1")],
        );
        assert_eq!(
            line,
            json!({
                "_aws": {
                    "Timestamp": 1_795_334_400_000u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "wxauth",
                        "Dimensions": [["Function"], ["Function", "Api", "Result"], ["Function", "Api"], ["Function", "Result"]],
                        "Metrics": [{"Name": "WeChatCalls", "Unit": "Count"}, {"Name": "WeChatLatency", "Unit": "Milliseconds"}]
                    }]
                },
                "Function": "wxauth-LoginFunction-x",
                "Api": "jscode2session",
                "Result": "-1",
                "WeChatCalls": 1.0,
                "WeChatLatency": 12.5
            })
        );
        let requests = record("f", 0, &[(Metric::Requests, 1.0)], &[("Outcome", "ok")]);
        assert_eq!(
            requests["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"], ["Function", "Outcome"]])
        );
    }
}
