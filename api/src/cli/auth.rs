//! `lablet token` and `lablet apikey`: credentials for people and machines.

use crate::auth::api_keys::mint;
use crate::auth::local_key::LocalKeys;
use crate::auth::{issue_local, Role, TokenRequest};
use crate::routes::api_keys::validate;
use lablet_application::ports::{Clock, SystemClock};
use lablet_infrastructure::auth_settings::TokenIssuer;
use lablet_infrastructure::stores::Stores;
use lablet_infrastructure::Settings;
use std::process::ExitCode;
use std::time::Duration;

/// A duration such as `90s`, `15m`, `1h` or `7d` (a bare number is seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 15m, 1h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` has an unknown unit; use s, m, h or d")),
    };
    if number == 0 {
        return Err("the time to live must be longer than zero".into());
    }
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// Prints a token signed with the data directory's local key.
pub fn issue(settings: &Settings, subject: &str, roles: &[Role], ttl: Duration) -> Result<ExitCode, String> {
    if subject.trim().is_empty() {
        return Err("--sub must not be empty".into());
    }
    let request = TokenRequest {
        subject: subject.trim().to_owned(),
        roles: roles.to_vec(),
        ttl,
    };
    println!("{}", issue_local(&settings.auth, &request)?);
    Ok(ExitCode::SUCCESS)
}

/// Makes a new local signing key; the previous one keeps verifying until the next rotation.
pub fn rotate_key(settings: &Settings) -> Result<ExitCode, String> {
    let TokenIssuer::Local { key_file } = &settings.auth.issuer else {
        return Err("LABLET_AUTH_ISSUER is set: rotate keys at the identity provider".into());
    };
    let kid = LocalKeys::rotate(key_file).map_err(|e| e.to_string())?;
    println!("new signing key {kid}; tokens signed with the previous key stay valid until they expire");
    Ok(ExitCode::SUCCESS)
}

pub async fn create_key(stores: &Stores, name: &str, roles: &[Role]) -> Result<ExitCode, String> {
    validate(name, roles).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("--{}: {}", e.field.trim_end_matches('s'), e.message))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let minted = mint(name.trim(), roles, "cli", SystemClock.now()).map_err(|e| e.to_string())?;
    stores
        .api_keys
        .insert(minted.record.clone())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "API key {} ({}) for roles {}; it is shown once, keep it now:",
        minted.record.id,
        minted.record.name,
        minted.record.roles.join(", ")
    );
    println!("{}", minted.key);
    Ok(ExitCode::SUCCESS)
}

pub async fn list_keys(stores: &Stores) -> Result<ExitCode, String> {
    let keys = stores.api_keys.list().await.map_err(|e| e.to_string())?;
    println!(
        "{:<32}  {:<20} {:<24} {:<25}  REVOKED",
        "ID", "NAME", "ROLES", "CREATED"
    );
    for key in keys {
        println!(
            "{:<32}  {:<20} {:<24} {:<25}  {}",
            key.id,
            key.name,
            key.roles.join(","),
            key.created_at.to_rfc3339(),
            key.revoked_at.map_or("-".into(), |at| at.to_rfc3339())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn revoke_key(stores: &Stores, id: &str) -> Result<ExitCode, String> {
    let revoked = stores
        .api_keys
        .revoke(id.trim(), SystemClock.now())
        .await
        .map_err(|e| e.to_string())?;
    if !revoked {
        return Err(format!("there is no API key {id}"));
    }
    println!("API key {id} revoked");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
