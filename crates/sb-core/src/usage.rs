//! Kinds of usage records and top-up channels, as named in the reference layout.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a usage record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UsageKind {
    /// An outgoing call.
    VoiceMo,
    /// An incoming call.
    VoiceMt,
    /// An outgoing SMS.
    SmsMo,
    /// An incoming SMS.
    SmsMt,
    /// A data session, or a partial record of a long one.
    Data,
    /// A top-up through a channel.
    Topup,
    /// An automatic top-up when the balance falls below a threshold.
    TopupAuto,
    /// A value-added service charge.
    Vas,
}

impl UsageKind {
    /// Every kind, in layout order.
    pub const ALL: [UsageKind; 8] =
        [Self::VoiceMo, Self::VoiceMt, Self::SmsMo, Self::SmsMt, Self::Data, Self::Topup, Self::TopupAuto, Self::Vas];

    /// The name used in files (`VOICE_MO`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VoiceMo => "VOICE_MO",
            Self::VoiceMt => "VOICE_MT",
            Self::SmsMo => "SMS_MO",
            Self::SmsMt => "SMS_MT",
            Self::Data => "DATA",
            Self::Topup => "TOPUP",
            Self::TopupAuto => "TOPUP_AUTO",
            Self::Vas => "VAS",
        }
    }

    /// Voice calls, in either direction.
    pub const fn is_voice(self) -> bool {
        matches!(self, Self::VoiceMo | Self::VoiceMt)
    }

    /// SMS, in either direction.
    pub const fn is_sms(self) -> bool {
        matches!(self, Self::SmsMo | Self::SmsMt)
    }

    /// Top-ups of any kind.
    pub const fn is_topup(self) -> bool {
        matches!(self, Self::Topup | Self::TopupAuto)
    }
}

impl fmt::Display for UsageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the known kinds or channels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`, expected one of: {expected}")]
pub struct UnknownName {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for UsageKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownName {
            what: "record type",
            value: s.to_owned(),
            expected: "VOICE_MO VOICE_MT SMS_MO SMS_MT DATA TOPUP TOPUP_AUTO VAS",
        })
    }
}

/// Where a top-up came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopupChannel {
    /// At a shop counter.
    Retail,
    /// On the operator's web site.
    Online,
    /// In the customer app.
    App,
    /// Through a bank (ATM, home banking).
    Bank,
    /// A prize credited by a promotion.
    Prize,
    /// Through a distribution network (tobacconists, newsagents).
    Diffusion,
    /// Automatic, when the balance falls below a threshold.
    AutoThreshold,
}

impl TopupChannel {
    /// Every channel, in layout order.
    pub const ALL: [TopupChannel; 7] =
        [Self::Retail, Self::Online, Self::App, Self::Bank, Self::Prize, Self::Diffusion, Self::AutoThreshold];

    /// The name used in files (`RETAIL`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Retail => "RETAIL",
            Self::Online => "ONLINE",
            Self::App => "APP",
            Self::Bank => "BANK",
            Self::Prize => "PRIZE",
            Self::Diffusion => "DIFFUSION",
            Self::AutoThreshold => "AUTO_THRESHOLD",
        }
    }
}

impl fmt::Display for TopupChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TopupChannel {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| UnknownName {
            what: "top-up channel",
            value: s.to_owned(),
            expected: "RETAIL ONLINE APP BANK PRIZE DIFFUSION AUTO_THRESHOLD",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_channel_round_trips_through_its_name() {
        for k in UsageKind::ALL {
            assert_eq!(k.as_str().parse::<UsageKind>(), Ok(k));
        }
        for c in TopupChannel::ALL {
            assert_eq!(c.as_str().parse::<TopupChannel>(), Ok(c));
        }
    }

    #[test]
    fn an_unknown_kind_names_the_value_and_the_choices() {
        let e = "FAX".parse::<UsageKind>().unwrap_err().to_string();
        assert!(e.contains("`FAX`") && e.contains("VOICE_MO"), "{e}");
    }
}
