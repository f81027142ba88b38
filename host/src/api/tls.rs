//! HTTPS for the API (`SIDECAR_API_TLS_CERT`, `SIDECAR_API_TLS_KEY`): rustls with the
//! certificate chain and key read from PEM files at start.

use crate::config::agent::ApiTls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The acceptor for `cfg`, or an error naming the file that could not be used.
pub fn acceptor(cfg: &ApiTls) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "SIDECAR_API_TLS_CERT {}: not a PEM certificate chain: {e}",
                cfg.cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "SIDECAR_API_TLS_CERT {}: no certificate in the file",
            cfg.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| {
        anyhow::anyhow!(
            "SIDECAR_API_TLS_KEY {}: not a PEM private key: {e}",
            cfg.key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("SIDECAR_API_TLS_CERT/KEY: {e}"))?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
