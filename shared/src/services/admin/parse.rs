//! The operator's command line, read.

use crate::domain::account::UserId;
use crate::domain::app::AppId;

pub const USAGE: &str = "usage: wxauth-admin show <userId|openid|appid:openid|unionid> | disable <userId> | enable <userId> | delete <userId> [--yes] | merge <keepUserId> <fromUserId> | log <userId> [--limit N] | claim-unionids";
pub const DEFAULT_LOG_LIMIT: usize = 50;
pub const MAX_LOG_LIMIT: usize = 1000;

/// Who `show` looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Who {
    User(UserId),
    /// `<appid>:<openid>`.
    Identity(AppId, String),
    /// A bare openid (the default app's), else a unionid.
    OpenidOrUnionid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    Show(Who),
    Disable(UserId),
    Enable(UserId),
    /// `--yes`: confirmed.
    Delete(UserId, bool),
    Merge {
        keep: UserId,
        from: UserId,
    },
    Log(UserId, usize),
    ClaimUnionids,
}

fn user(arg: &str) -> Result<UserId, String> {
    UserId::parse(arg).ok_or_else(|| format!("{arg} is not a userId (u_ and 22 characters)"))
}

fn who(arg: &str) -> Result<Who, String> {
    if let Some(user_id) = UserId::parse(arg) {
        return Ok(Who::User(user_id));
    }
    if let Some((appid, openid)) = arg.split_once(':') {
        let appid = AppId::parse(appid)
            .ok_or_else(|| format!("{appid} is not an appid (wx and 16 letters or digits)"))?;
        if openid.is_empty() {
            return Err(format!("{arg} names no openid after the appid"));
        }
        return Ok(Who::Identity(appid, openid.to_owned()));
    }
    Ok(Who::OpenidOrUnionid(arg.to_owned()))
}

pub(super) fn parse(args: &[String]) -> Result<Command, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["show", who_] => Ok(Command::Show(who(who_)?)),
        ["disable", id] => Ok(Command::Disable(user(id)?)),
        ["enable", id] => Ok(Command::Enable(user(id)?)),
        ["delete", id] => Ok(Command::Delete(user(id)?, false)),
        ["delete", id, "--yes"] => Ok(Command::Delete(user(id)?, true)),
        ["merge", keep, from] => Ok(Command::Merge {
            keep: user(keep)?,
            from: user(from)?,
        }),
        ["log", id] => Ok(Command::Log(user(id)?, DEFAULT_LOG_LIMIT)),
        ["log", id, "--limit", limit] => {
            let limit = limit
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                .ok_or_else(|| format!("--limit takes a number from 1 to {MAX_LOG_LIMIT}"))?;
            Ok(Command::Log(user(id)?, limit))
        }
        ["claim-unionids"] => Ok(Command::ClaimUnionids),
        _ => Err(USAGE.to_owned()),
    }
}
