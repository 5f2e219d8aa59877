//! Who is calling and what they may do.
//!
//! Every route declares an [`Access`] in the route table; the [`guard`] in front of it
//! authenticates the caller (a bearer JWT or an `X-API-Key`), checks their roles and hands the
//! [`Principal`] to the handler, whose commands record it as the actor of their events.

pub mod api_keys;
mod failure;
mod guard;
pub mod local_key;
mod oidc;
mod roles;
mod tokens;

pub use failure::AuthFailure;
pub use guard::{guard, Guard};
pub use roles::{Access, Principal, Role};
pub use tokens::{issue_local, Authenticator, TokenRequest};
