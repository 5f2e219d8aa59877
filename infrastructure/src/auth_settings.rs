//! `LABLET_AUTH_*` and `LABLET_METRICS_PUBLIC`: who may call Lablet, and how callers prove it.

use crate::config::ConfigError;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How bearer tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenIssuer {
    /// The embedded default: HS256 tokens signed with a key generated into the data directory
    /// (`lablet token issue` prints them).
    Local { key_file: PathBuf },
    /// `LABLET_AUTH_ISSUER`: an OpenID Connect issuer whose JWKS holds the RS256/ES256 keys;
    /// `LABLET_AUTH_JWKS_REFETCH_MIN_MS` (default 10000): how soon after one fetch a token
    /// naming an unknown key may make Lablet fetch the keys again.
    Oidc { issuer: String, refetch_min: Duration },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub issuer: TokenIssuer,
    /// `LABLET_AUTH_AUDIENCE`, default `lablet`: the `aud` every token must carry.
    pub audience: String,
    /// `LABLET_METRICS_PUBLIC`, default `true`: whether `/metrics` needs no credentials.
    pub metrics_public: bool,
    /// `LABLET_AUTH_CLOCK_LEEWAY_SECONDS`, default 30 (at most 300): the clock skew tolerated on
    /// a token's `exp` and `nbf`.
    pub clock_leeway: Duration,
}

/// The most clock skew a deployment may tolerate on tokens.
const MAX_CLOCK_LEEWAY_SECONDS: u64 = 300;

/// The `iss` of tokens signed with the local key.
pub const LOCAL_ISSUER: &str = "lablet";

impl AuthSettings {
    /// Local tokens, the key in `<data_dir>/auth/hs256.key`.
    pub fn defaults_in(data_dir: &Path) -> Self {
        AuthSettings {
            issuer: TokenIssuer::Local {
                key_file: data_dir.join("auth").join("hs256.key"),
            },
            audience: "lablet".into(),
            metrics_public: true,
            clock_leeway: Duration::from_secs(30),
        }
    }

    pub fn from_lookup(data_dir: &Path, lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut auth = AuthSettings::defaults_in(data_dir);
        if let Some(issuer) = lookup("LABLET_AUTH_ISSUER").filter(|i| !i.trim().is_empty()) {
            let issuer = issuer.trim().trim_end_matches('/').to_owned();
            let valid = reqwest::Url::parse(&issuer)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
            if !valid {
                return Err(ConfigError {
                    setting: "LABLET_AUTH_ISSUER",
                    message: format!("`{issuer}` is not an http:// or https:// issuer URL"),
                });
            }
            let refetch_min = match lookup("LABLET_AUTH_JWKS_REFETCH_MIN_MS") {
                None => Duration::from_secs(10),
                Some(ms) => Duration::from_millis(ms.trim().parse().map_err(|_| ConfigError {
                    setting: "LABLET_AUTH_JWKS_REFETCH_MIN_MS",
                    message: format!("`{ms}` is not a number of milliseconds"),
                })?),
            };
            auth.issuer = TokenIssuer::Oidc { issuer, refetch_min };
        }
        if let Some(audience) = lookup("LABLET_AUTH_AUDIENCE") {
            if audience.trim().is_empty() {
                return Err(ConfigError {
                    setting: "LABLET_AUTH_AUDIENCE",
                    message: "must not be empty".into(),
                });
            }
            auth.audience = audience.trim().to_owned();
        }
        if let Some(public) = lookup("LABLET_METRICS_PUBLIC") {
            auth.metrics_public = crate::config::boolean("LABLET_METRICS_PUBLIC", &public)?;
        }
        if let Some(seconds) = lookup("LABLET_AUTH_CLOCK_LEEWAY_SECONDS") {
            auth.clock_leeway = seconds
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= MAX_CLOCK_LEEWAY_SECONDS)
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError {
                    setting: "LABLET_AUTH_CLOCK_LEEWAY_SECONDS",
                    message: format!("`{seconds}` is not a number of seconds from 0 to {MAX_CLOCK_LEEWAY_SECONDS}"),
                })?;
        }
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn auth(vars: &[(&str, &str)]) -> Result<AuthSettings, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        AuthSettings::from_lookup(Path::new("/data"), &|name| vars.get(name).cloned())
    }

    #[test]
    fn local_tokens_by_default_oidc_when_an_issuer_is_set() {
        let local = auth(&[]).unwrap();
        assert_eq!(
            local.issuer,
            TokenIssuer::Local {
                key_file: PathBuf::from("/data/auth/hs256.key")
            }
        );
        assert_eq!(local.audience, "lablet");
        assert!(local.metrics_public);
        let oidc = auth(&[
            ("LABLET_AUTH_ISSUER", "https://sso.example.com/realms/labs/"),
            ("LABLET_AUTH_AUDIENCE", "lablet-api"),
            ("LABLET_METRICS_PUBLIC", "false"),
        ])
        .unwrap();
        assert_eq!(
            oidc.issuer,
            TokenIssuer::Oidc {
                issuer: "https://sso.example.com/realms/labs".into(),
                refetch_min: Duration::from_secs(10)
            }
        );
        assert_eq!(oidc.audience, "lablet-api");
        assert!(!oidc.metrics_public);
    }

    #[test]
    fn bad_values_name_their_setting() {
        assert_eq!(
            auth(&[("LABLET_AUTH_ISSUER", "sso")]).unwrap_err().setting,
            "LABLET_AUTH_ISSUER"
        );
        assert_eq!(
            auth(&[("LABLET_AUTH_AUDIENCE", " ")]).unwrap_err().setting,
            "LABLET_AUTH_AUDIENCE"
        );
        assert_eq!(
            auth(&[("LABLET_METRICS_PUBLIC", "maybe")]).unwrap_err().setting,
            "LABLET_METRICS_PUBLIC"
        );
        for leeway in ["-1", "301", "soon"] {
            assert_eq!(
                auth(&[("LABLET_AUTH_CLOCK_LEEWAY_SECONDS", leeway)])
                    .unwrap_err()
                    .setting,
                "LABLET_AUTH_CLOCK_LEEWAY_SECONDS"
            );
        }
        assert_eq!(
            auth(&[("LABLET_AUTH_CLOCK_LEEWAY_SECONDS", "5")]).unwrap().clock_leeway,
            Duration::from_secs(5)
        );
    }
}
