//! Where the KurrentDB log is: the official client's connection string (`kurrentdb://…`,
//! `esdb://…`, with `+discover` for clusters), plus one parameter of Lablet's own,
//! `namespace`, that keeps this deployment's streams apart from anything else on the server.
//!
//! With `namespace=prod`, Lablet's stream `lab_record-<id>` is `prod:lab_record-<id>` on the
//! server and `$all` is read through a stream-name prefix filter, so two deployments (or a test
//! run) share a server without seeing each other's events. Without one, streams keep their
//! names and `$all` is read without the server's own (`$`) events.

use super::log::AllFilter;

/// The separator between a namespace and a stream name on the server.
const SEPARATOR: char = ':';

/// The connection string for the client and the namespace taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KurrentTarget {
    pub connection: String,
    pub namespace: Namespace,
}

/// How Lablet's stream names map to the server's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace(Option<String>);

impl Namespace {
    /// Streams prefixed with `name` and the separator; `None` keeps names unchanged.
    pub fn new(name: Option<String>) -> Result<Self, String> {
        if let Some(name) = &name {
            let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
            if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
                return Err(format!(
                    "namespace `{name}` must be 1 to 64 letters, digits, '_', '-' or '.'"
                ));
            }
        }
        Ok(Namespace(name))
    }

    /// The server's name for Lablet's `stream`.
    pub fn server_stream(&self, stream: &str) -> String {
        match &self.0 {
            Some(name) => format!("{name}{SEPARATOR}{stream}"),
            None => stream.to_owned(),
        }
    }

    /// Lablet's name for the server's `stream`, if it is in this namespace.
    pub fn lablet_stream<'a>(&self, stream: &'a str) -> Option<&'a str> {
        match &self.0 {
            Some(name) => stream.strip_prefix(name.as_str())?.strip_prefix(SEPARATOR),
            None => Some(stream),
        }
    }

    /// The `$all` filter that shows this namespace's events and no others.
    pub fn filter(&self) -> AllFilter {
        match &self.0 {
            Some(name) => AllFilter::StreamPrefix(format!("{name}{SEPARATOR}")),
            None => AllFilter::ExcludeSystemEvents,
        }
    }
}

impl KurrentTarget {
    /// Parses `url`; the error says what is wrong without repeating credentials.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut namespace = None;
        let mut kept = Vec::new();
        for parameter in query.split('&').filter(|p| !p.is_empty()) {
            match parameter.split_once('=') {
                Some((key, value)) if key.eq_ignore_ascii_case("namespace") => namespace = Some(value.to_owned()),
                _ => kept.push(parameter),
            }
        }
        let namespace = Namespace::new(namespace)?;
        let connection = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        connection
            .parse::<kurrentdb::ClientSettings>()
            .map_err(|e| format!("not a KurrentDB connection string: {}", e.message()))?;
        Ok(KurrentTarget { connection, namespace })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_taken_out_of_the_connection_string() {
        let target = KurrentTarget::parse("kurrentdb://127.0.0.1:2113?tls=false&namespace=prod").unwrap();
        assert_eq!(target.connection, "kurrentdb://127.0.0.1:2113?tls=false");
        assert_eq!(target.namespace.server_stream("lab_record-1"), "prod:lab_record-1");
        assert_eq!(
            target.namespace.lablet_stream("prod:lab_record-1"),
            Some("lab_record-1")
        );
        assert_eq!(target.namespace.lablet_stream("staging:lab_record-1"), None);
        assert_eq!(target.namespace.lablet_stream("prodlab_record-1"), None);
        assert_eq!(target.namespace.filter(), AllFilter::StreamPrefix("prod:".into()));

        let plain = KurrentTarget::parse("esdb://node1:2113,node2:2113?tls=true").unwrap();
        assert_eq!(plain.connection, "esdb://node1:2113,node2:2113?tls=true");
        assert_eq!(plain.namespace.server_stream("lab_record-1"), "lab_record-1");
        assert_eq!(plain.namespace.filter(), AllFilter::ExcludeSystemEvents);
    }

    #[test]
    fn bad_targets_are_refused_with_the_reason() {
        let bad_namespace = KurrentTarget::parse("kurrentdb://h:2113?namespace=a$b").unwrap_err();
        assert!(bad_namespace.contains("namespace"), "{bad_namespace}");
        assert!(KurrentTarget::parse("kurrentdb://h:2113?namespace=").is_err());
        let bad_setting = KurrentTarget::parse("kurrentdb://h:2113?tls=maybe").unwrap_err();
        assert!(bad_setting.contains("tls"), "{bad_setting}");
    }

    #[test]
    fn filters_pass_only_their_events() {
        let namespaced = AllFilter::StreamPrefix("t1:".into());
        assert!(namespaced.passes("t1:lab_record-1", "lab_record.discovered"));
        assert!(!namespaced.passes("t2:lab_record-1", "lab_record.discovered"));
        assert!(!namespaced.passes("$$t1:lab_record-1", "$metadata"));
        let plain = AllFilter::ExcludeSystemEvents;
        assert!(plain.passes("lab_record-1", "lab_record.discovered"));
        assert!(!plain.passes("$stats-127.0.0.1:2113", "$statsCollected"));
    }
}
