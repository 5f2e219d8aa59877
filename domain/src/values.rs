//! Values parsed once, where input enters, so that nothing past the edge checks them again.
//!
//! Each type here can only be built valid: through `parse` (for callers inside Lablet, such as
//! the fleet jobs) or through `Deserialize` (for the API, whose extractors turn the refusal into
//! a 422 problem naming the field). Commands hold these types, so a command that exists is
//! well-formed and `decide` judges only whether the state allows it. Their JSON schema is that
//! of the plain value they wrap; they serialise as that value too.

use crate::text::{free_text_problem, name_problem};
use chrono::{DateTime, Utc};
use serde::{de, Deserialize, Deserializer, Serialize};
use std::fmt;

/// A name or an id of at most `MAX` characters: not blank, single-line, no control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name<const MAX: usize>(String);

/// Free text of at most `MAX` characters (a reason, a note): may be blank, holds no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct FreeText<const MAX: usize>(String);

/// Free text of at most `MAX` characters that says something: not blank, holds no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RequiredText<const MAX: usize>(String);

/// A whole number from `MIN` to `MAX`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: u32, const MAX: u32>(u32);

/// A lab's id on its CML server.
pub type LabId = Name<256>;
/// The executor that leases a work order.
pub type ExecutorName = Name<128>;

impl<const MAX: usize> Name<MAX> {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        match name_problem(&value, MAX) {
            None => Ok(Name(value)),
            Some(problem) => Err(problem),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> FreeText<MAX> {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        match free_text_problem(&value, MAX) {
            None => Ok(FreeText(value)),
            Some(problem) => Err(problem),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> RequiredText<MAX> {
    pub fn parse(value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err("must not be empty".into());
        }
        match free_text_problem(&value, MAX) {
            None => Ok(RequiredText(value)),
            Some(problem) => Err(problem),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MIN: u32, const MAX: u32> Bounded<MIN, MAX> {
    /// A constant known at compile time to lie in range (a default, say).
    pub const fn new_const(value: u32) -> Self {
        assert!(MIN <= value && value <= MAX, "constant out of range");
        Bounded(value)
    }

    pub fn parse(value: u32) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Bounded(value))
        } else {
            Err(format!("must be between {MIN} and {MAX}"))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl<const MAX: usize> fmt::Display for Name<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> std::ops::Deref for Name<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Name<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Name::parse(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for FreeText<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        FreeText::parse(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for RequiredText<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RequiredText::parse(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bounded::parse(u32::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// The schema of the wrapped value, inlined: the API documents a string or an integer.
macro_rules! schema_of_inner {
    ($inner:ty, $ty:ty, $($generics:tt)*) => {
        impl<$($generics)*> schemars::JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <$inner as schemars::JsonSchema>::schema_name()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <$inner as schemars::JsonSchema>::json_schema(generator)
            }
        }
    };
}

pub(crate) use schema_of_inner;

schema_of_inner!(String, Name<MAX>, const MAX: usize);
schema_of_inner!(String, FreeText<MAX>, const MAX: usize);
schema_of_inner!(String, RequiredText<MAX>, const MAX: usize);
schema_of_inner!(u32, Bounded<MIN, MAX>, const MIN: u32, const MAX: u32);

/// A reserved time window: it ends after it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeslot {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Timeslot {
    /// The window from `start` to `end`; the refusal is about the end.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, String> {
        if end > start {
            Ok(Timeslot { start, end })
        } else {
            Err("must be after timeslot_start".into())
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// How long the window lasts.
    pub fn duration(&self) -> chrono::TimeDelta {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_refuse_what_their_rules_forbid_with_the_rule_as_the_reason() {
        assert_eq!(Name::<3>::parse(" ").unwrap_err(), "must not be empty");
        assert_eq!(Name::<3>::parse("abcd").unwrap_err(), "must be at most 3 characters");
        assert_eq!(Name::<3>::parse("éé").unwrap().as_str(), "éé");
        assert!(FreeText::<3>::parse("a\u{0}").is_err());
        assert_eq!(FreeText::<3>::parse("").unwrap().as_str(), "");
        assert_eq!(RequiredText::<3>::parse(" ").unwrap_err(), "must not be empty");
        assert_eq!(Bounded::<1, 5>::parse(0).unwrap_err(), "must be between 1 and 5");
        assert_eq!(Bounded::<1, 5>::parse(5).unwrap().get(), 5);
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(Timeslot::new(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:00Z")).is_err());
        let slot = Timeslot::new(at("2026-01-01T10:00:00Z"), at("2026-01-01T11:00:00Z")).unwrap();
        assert_eq!(slot.end(), at("2026-01-01T11:00:00Z"));
    }

    #[test]
    fn deserialising_applies_the_same_rules_and_serialising_gives_the_plain_value() {
        let refused = serde_json::from_str::<Name<8>>("\"  \"").unwrap_err();
        assert!(refused.to_string().starts_with("must not be empty"), "{refused}");
        assert!(serde_json::from_str::<Bounded<1, 5>>("6").is_err());
        let name: Name<8> = serde_json::from_str("\"lab-1\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"lab-1\"");
    }
}
