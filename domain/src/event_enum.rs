//! `domain_events!`: declares an aggregate's event enum with each variant's wire name written
//! once.
//!
//! The macro writes the serde tag (`{"type": <wire name>, "data": <payload>}`), the
//! [`DomainEvent`](crate::DomainEvent) implementation (`event_type`, `schema_version`,
//! `EVENT_TYPES`) and nothing else, so the name a payload is stored under cannot drift from
//! the name the code reports. A variant whose payload changed shape carries its current schema
//! version after `@` and registers an upcaster from the older one (see [`crate::upcast`]).
//!
//! ```ignore
//! domain_events! {
//!     #[derive(Debug, Clone, PartialEq)]
//!     pub enum LabRecordEvent {
//!         "lab_record.removed" => Removed { reason: RemovalReason, removed_at: DateTime<Utc> },
//!         "lab_record.state_changed" @ 2 => StateChanged { previous: LabState, new: LabState },
//!     }
//!     upcasters: UPCASTERS;
//! }
//! ```

/// See the [module documentation](crate::event_enum).
#[macro_export]
macro_rules! domain_events {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $wire:literal $(@ $version:literal)? => $variant:ident $body:tt
            ),* $(,)?
        }
        $(upcasters: $upcasters:path;)?
    ) => {
        $(#[$meta])*
        #[derive(::serde::Serialize, ::serde::Deserialize)]
        #[serde(tag = "type", content = "data")]
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $wire)]
                $variant $body,
            )*
        }

        impl $crate::DomainEvent for $name {
            const EVENT_TYPES: &'static [&'static str] = &[$($wire),*];
            $(const UPCASTERS: &'static [$crate::upcast::Upcaster] = $upcasters;)?

            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $wire,)*
                }
            }

            fn schema_version(&self) -> u32 {
                match self {
                    $(Self::$variant { .. } => $crate::domain_events!(@version $($version)?),)*
                }
            }
        }
    };
    (@version) => { 1 };
    (@version $version:literal) => { $version };
}
