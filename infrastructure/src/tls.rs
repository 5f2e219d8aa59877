//! One TLS crypto provider for the whole process.
//!
//! Two providers are compiled in: `ring`, which Lablet's own clients use, and `aws-lc-rs`,
//! which the KurrentDB client's gRPC stack brings. With both present rustls cannot pick a
//! default, and a client that builds its TLS configuration without naming a provider would
//! fail at run time. Every adapter that opens TLS connections calls
//! [`install_crypto_provider`] first, so `ring` is the process default before any of them.

use std::sync::Once;

/// Makes `ring` the process's default TLS crypto provider; later calls do nothing.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Fails only if a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_default_provider_is_there_after_installing() {
        super::install_crypto_provider();
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
