//! Risk control at sign-up (`RISK_CONTROL`, `RISK_REJECT_RANK`): WeChat's
//! risk rank of a new mini-program user, recorded or enforced.

use super::wechat::RiskRank;

/// `RISK_CONTROL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RiskControl {
    /// No check (the default).
    #[default]
    Off,
    /// The rank is stored and logged; nobody is refused.
    Record,
    /// As `Record`, and a rank at or above the threshold refuses the sign-up.
    Enforce,
}

impl RiskControl {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "record" => Some(Self::Record),
            "enforce" => Some(Self::Enforce),
            _ => None,
        }
    }
}

/// The default `RISK_REJECT_RANK`: only WeChat's highest rank is refused.
pub const DEFAULT_REJECT_RANK: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskPolicy {
    pub control: RiskControl,
    /// 1 to 4: with `Enforce`, a rank at or above it is refused.
    pub reject_rank: u8,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        Self {
            control: RiskControl::Off,
            reject_rank: DEFAULT_REJECT_RANK,
        }
    }
}

impl RiskPolicy {
    /// Whether a sign-up is checked at all.
    pub fn checks(&self) -> bool {
        self.control != RiskControl::Off
    }

    /// Whether a sign-up ranked `rank` is refused. No rank (the check
    /// failed) never refuses: the check fails open.
    pub fn refuses(&self, rank: Option<RiskRank>) -> bool {
        self.control == RiskControl::Enforce
            && rank.is_some_and(|rank| rank.get() >= self.reject_rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enforce_refuses_and_only_at_or_above_the_threshold() {
        let rank = |n| RiskRank::new(n);
        let enforce = RiskPolicy {
            control: RiskControl::Enforce,
            reject_rank: 3,
        };
        assert!(!enforce.refuses(rank(2)));
        assert!(enforce.refuses(rank(3)));
        assert!(enforce.refuses(rank(4)));
        assert!(!enforce.refuses(None), "a failed check fails open");
        let record = RiskPolicy {
            control: RiskControl::Record,
            ..enforce
        };
        assert!(!record.refuses(rank(4)));
        assert!(record.checks());
        assert!(!RiskPolicy::default().checks());
        assert_eq!(RiskControl::parse("enforce"), Some(RiskControl::Enforce));
        assert_eq!(RiskControl::parse("ENFORCE"), None);
    }
}
