//! What a worker endpoint may be: an http(s) base URL naming a host, without credentials, query
//! or fragment. An [`Endpoint`] is one, parsed where it enters; [`check_endpoint`] checks a
//! stored one again before a client is made.

use serde::{de, Deserialize, Deserializer, Serialize};

/// Longest endpoint accepted.
const MAX_ENDPOINT_LEN: usize = 2048;

/// `Ok` when `endpoint` can be a CML base URL, else why not.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.trim().is_empty() {
        return Err("must not be blank: leave it out for a worker that is still to be provisioned".into());
    }
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(format!("must be at most {MAX_ENDPOINT_LEN} characters"));
    }
    if endpoint.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or("must be an https:// (or http://) URL")?;
    if rest.contains('?') || rest.contains('#') {
        return Err("must not have a query or a fragment".into());
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials; give them as username and password".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => (authority, None),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return Err("must name a host".into());
    }
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Err("has a port that is not a number from 1 to 65535".into());
    }
    Ok(())
}

/// A CML server's base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Endpoint(String);

impl Endpoint {
    pub fn parse(endpoint: &str) -> Result<Self, String> {
        check_endpoint(endpoint)?;
        Ok(Endpoint(endpoint.trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Endpoint::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

crate::values::schema_of_inner!(String, Endpoint,);

#[cfg(test)]
mod tests {
    use super::{check_endpoint, Endpoint};

    #[test]
    fn an_endpoint_loses_its_trailing_slash() {
        assert_eq!(Endpoint::parse("https://cml/").unwrap().as_str(), "https://cml");
    }

    #[test]
    fn endpoints_must_be_plain_http_urls_with_a_host() {
        assert!(check_endpoint("https://cml-1.example.net").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8080/").is_ok());
        assert!(check_endpoint("https://[::1]:443").is_ok());
        assert!(check_endpoint("ftp://cml").is_err());
        assert!(check_endpoint("cml-1.example.net").is_err());
        assert!(check_endpoint("https://").unwrap_err().contains("host"));
        assert!(check_endpoint("https://admin:pw@cml")
            .unwrap_err()
            .contains("credentials"));
        assert!(check_endpoint("https://cml/?x=1").is_err());
        assert!(check_endpoint("https://cml:99999").unwrap_err().contains("port"));
        assert!(check_endpoint("https://cml one").is_err());
    }
}
