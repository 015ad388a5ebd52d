//! TLS to PostgreSQL (rustls): used when the connection string asks for it
//! (`sslmode=require`). The server's certificate and name are verified against the system's
//! trust store plus the certificates of `storage.postgres_ca_file` (a managed database's CA
//! bundle, such as Amazon RDS's, or a private CA).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::error::{Result, StorageError};

/// The certificates a PEM file holds (at least one).
pub fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| StorageError::unavailable(format!("CA file {}: {e}", path.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StorageError::unavailable(format!("CA file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(StorageError::unavailable(format!("CA file {}: no certificate in it", path.display())));
    }
    Ok(certs)
}

/// A client configuration trusting the system's roots and those of `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    // Certificates of the system store that rustls cannot use are skipped.
    let (_added, _ignored) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        for cert in pem_certificates(path)? {
            roots.add(cert).map_err(|e| StorageError::unavailable(format!("CA file {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(StorageError::unavailable(
            "TLS to PostgreSQL: no trusted certificate (system store empty, no CA file)",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::unavailable(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
