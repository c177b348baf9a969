//! `storage.fsync_policy` (spec §9.3): `"every_write"`, `"never"`, `{ every_n = N }`,
//! `{ every_ms = N }` in TOML; `every_write`, `everywrite`, `never`, `every_n:N`, `every_ms:N`
//! (case-insensitive) in `RSTMDB_FSYNC_POLICY`.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::fmt;

/// The fsync policy as configured. What each policy guarantees is documented on the WAL's own
/// policy type; this is only the configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicySetting {
    #[default]
    EveryWrite,
    EveryN(u32),
    EveryMs(u32),
    Never,
}

pub(crate) const ACCEPTED: &str =
    "\"every_write\", \"never\", { every_n = N } or { every_ms = N } with N >= 1";

impl fmt::Display for FsyncPolicySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EveryWrite => f.write_str("every_write"),
            Self::Never => f.write_str("never"),
            Self::EveryN(n) => write!(f, "every_n:{n}"),
            Self::EveryMs(ms) => write!(f, "every_ms:{ms}"),
        }
    }
}

impl FsyncPolicySetting {
    /// Parses the environment-variable / flag form, e.g. `every_n:100`.
    pub fn parse_flag(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let count = |n: &str| -> Result<u32, String> {
            match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!(
                    "`{n}` is not a whole number from 1 to {}",
                    u32::MAX
                )),
            }
        };
        match lower.as_str() {
            "every_write" | "everywrite" => Ok(Self::EveryWrite),
            "never" => Ok(Self::Never),
            _ => match lower.split_once(':') {
                Some(("every_n", n)) => count(n).map(Self::EveryN),
                Some(("every_ms", n)) => count(n).map(Self::EveryMs),
                _ => Err(format!(
                    "`{text}` is not an fsync policy; accepted: every_write, never, every_n:N, every_ms:N"
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for FsyncPolicySetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PolicyVisitor)
    }
}

struct PolicyVisitor;

impl<'de> Visitor<'de> for PolicyVisitor {
    type Value = FsyncPolicySetting;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ACCEPTED)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        match value {
            "every_write" => Ok(FsyncPolicySetting::EveryWrite),
            "never" => Ok(FsyncPolicySetting::Never),
            other => Err(E::custom(format!(
                "unknown fsync policy `{other}`; accepted: {ACCEPTED}"
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(format!(
                "an inline table needs exactly one key; accepted: {ACCEPTED}"
            )));
        };
        let n: i64 = map.next_value()?;
        let n = u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            de::Error::custom(format!("{key} = {n} is out of range; accepted: {ACCEPTED}"))
        })?;
        let policy = match key.as_str() {
            "every_n" => FsyncPolicySetting::EveryN(n),
            "every_ms" => FsyncPolicySetting::EveryMs(n),
            other => {
                return Err(de::Error::custom(format!(
                    "unknown fsync policy key `{other}`; accepted: {ACCEPTED}"
                )));
            }
        };
        if map.next_key::<String>()?.is_some() {
            return Err(de::Error::custom(format!(
                "an inline table needs exactly one key; accepted: {ACCEPTED}"
            )));
        }
        Ok(policy)
    }
}
