//! The risk rank of a sign-up: asked of WeChat within a second, and never a
//! reason to fail a login (any failure goes on without a rank).

use std::time::Duration;

use tracing::{info, warn};

use crate::domain::app::AppId;
use crate::domain::wechat::RiskRank;
use crate::runtime::deadline::Deadline;
use crate::runtime::metrics::{self, Metric};
use crate::wechat::server_api::WeChatServerApi;

/// At most this long for the rank, access token included.
pub const RISK_CHECK_BUDGET: Duration = Duration::from_secs(1);

/// WeChat's risk rank of `openid` signing up from `client_ip`, or `None`
/// (counted as `RiskCheckFailed`) when it cannot be had within the budget:
/// any errcode (61010 when the user has not opened the mini-program
/// recently, a quota, -1), a malformed answer, no answer in time, no source IP.
pub async fn sign_up_rank(
    wechat: &impl WeChatServerApi,
    appid: &AppId,
    openid: &str,
    client_ip: Option<&str>,
    deadline: Deadline,
) -> Option<RiskRank> {
    let failed = |reason: &str| {
        warn!(
            reason,
            "the sign-up's risk rank could not be read; going on without it"
        );
        metrics::count(Metric::RiskCheckFailed, &[]);
        None
    };
    let Some(client_ip) = client_ip else {
        return failed("the request carries no source IP");
    };
    let budget = Deadline::after(RISK_CHECK_BUDGET.min(deadline.remaining()));
    match budget
        .run(wechat.risk_rank(appid, openid, client_ip, budget))
        .await
    {
        Some(Ok(rank)) => {
            info!(rank = rank.get(), "sign-up risk rank");
            Some(rank)
        }
        Some(Err(err)) => failed(&err.to_string()),
        None => failed("no answer within a second"),
    }
}
