//! HTTPS and WSS: the certificate and key files (and, for mutual TLS, the
//! client CA) loaded into a rustls configuration, checked whole at start
//! (a bad or mismatched file is an error naming it), and re-read on SIGHUP:
//! new connections get the new certificate, open ones keep theirs, and a
//! bad file changes nothing.

use crate::config::TlsFiles;
use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::{Arc, RwLock};

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::config(format!("{}: {what}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, format!("cannot read certificates: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// Reads and checks the files: the chain, a key that matches it, and the
/// client CA when mutual TLS is asked for.
pub fn load(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    let chain = certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad(&files.key, format!("not a PEM private key: {e}")))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(ca)? {
                roots
                    .add(c)
                    .map_err(|e| bad(ca, format!("not a CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| bad(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        bad(
            &files.key,
            format!("does not go with {}: {e}", files.cert.display()),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The configuration new connections get; `reload` swaps it.
pub struct Certificates {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl Certificates {
    pub fn open(files: &TlsFiles) -> Result<Certificates> {
        Ok(Certificates {
            current: RwLock::new(load(files)?),
            files: files.clone(),
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let c = self.current.read().unwrap_or_else(|p| p.into_inner());
        tokio_rustls::TlsAcceptor::from(c.clone())
    }

    /// Reads the files again; on an error keeps the configuration in use.
    pub fn reload(&self) -> Result<()> {
        let fresh = load(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}
