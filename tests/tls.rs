//! HTTPS and WSS (issue "Hardening"), with certificates made here by a
//! test CA (rcgen): the daemon answers over TLS only, the live feed works
//! as WSS, a SIGHUP swaps the certificate for new connections while an open
//! one goes on, mutual TLS refuses a client without a certificate, and bad
//! or mismatched files stop start-up naming the file.

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate for `names` signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, names: &[&str], client: bool) -> (String, String) {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<String>>())
            .expect("params");
    p.distinguished_name.push(DnType::CommonName, names[0]);
    if client {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    }
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p
}

/// An HTTPS client that trusts `ca_pem`, with a client certificate if given.
fn client(ca_pem: &str, me: Option<&(String, String)>) -> ureq::Agent {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let root = Certificate::from_pem(ca_pem.as_bytes()).expect("CA pem");
    let mut tls = TlsConfig::builder().root_certs(RootCerts::new_with_certs(&[root]));
    if let Some((cert, key)) = me {
        let chain = [Certificate::from_pem(cert.as_bytes()).expect("cert pem")];
        let key = PrivateKey::from_pem(key.as_bytes()).expect("key pem");
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn status(agent: &ureq::Agent, url: &str) -> Result<u16, String> {
    agent
        .get(url)
        .call()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Opens a WSS connection to the live feed trusting `ca_pem` and returns
/// the first message's `type`, and the socket for more.
async fn live_feed(
    addr: std::net::SocketAddr,
    ca_pem: &str,
) -> (
    String,
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
) {
    use futures_util::StreamExt;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("pem"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws/metrics", addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("websocket upgrade over TLS");
    let first = ws.next().await.expect("a message").expect("ok");
    let v: serde_json::Value = serde_json::from_str(first.to_text().expect("text")).expect("json");
    (v["type"].as_str().unwrap_or("").to_string(), ws)
}

#[test]
fn https_and_wss_with_a_certificate_reread_on_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first_ca = authority("first CA");
    let first_ca_pem = first_ca.pem();
    let (cert, key) = leaf(&first_ca, &["localhost", "127.0.0.1"], false);
    let cert_file = write(dir.path(), "cert.pem", &cert);
    let key_file = write(dir.path(), "key.pem", &key);
    let p = Process::spawn(
        &dir.path().join("data"),
        &[
            ("TLS_CERT_FILE", cert_file.to_str().expect("path")),
            ("TLS_KEY_FILE", key_file.to_str().expect("path")),
            ("DASHBOARD_REFRESH_INTERVAL", "0.2"),
        ],
    );
    assert!(
        p.startup
            .iter()
            .any(|l| l.contains("listening on https://")),
        "{:?}",
        p.startup
    );
    let url = format!("https://localhost:{}/health", p.addr.port());
    assert_eq!(status(&client(&first_ca_pem, None), &url), Ok(200));
    // Plain HTTP to the TLS port is not answered as HTTP.
    let (code, _) = raw_http(p.addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_ne!(code, 200);

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        use futures_util::StreamExt;
        let (kind, mut ws) = live_feed(p.addr, &first_ca_pem).await;
        assert_eq!(kind, "snapshot");

        // A certificate from another CA, read on SIGHUP.
        let second_ca = authority("second CA");
        let (cert, key) = leaf(&second_ca, &["localhost"], false);
        std::fs::write(&cert_file, cert).expect("cert");
        std::fs::write(&key_file, key).expect("key");
        let hup = std::process::Command::new("kill")
            .args(["-HUP", &p.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(hup.success());
        let second = client(&second_ca.pem(), None);
        let url2 = url.clone();
        let swapped = tokio::task::spawn_blocking(move || {
            wait_for(Duration::from_secs(10), || {
                (status(&second, &url2) == Ok(200)).then_some(())
            })
        });
        swapped
            .await
            .expect("new connections get the new certificate");
        assert!(status(&client(&first_ca_pem, None), &url).is_err());
        // The connection opened before goes on.
        let more = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        assert!(matches!(more, Ok(Some(Ok(_)))), "{more:?}");
    });
    // The daemon is still running.
    assert!(p.child.id() > 0);
    let mut p = p;
    assert!(
        p.child.try_wait().expect("wait").is_none(),
        "SIGHUP must not stop it"
    );
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = authority("platform CA");
    let (cert, key) = leaf(&ca, &["localhost"], false);
    let clients = authority("clients CA");
    let ca_file = write(dir.path(), "clients.pem", &clients.pem());
    let cert_file = write(dir.path(), "cert.pem", &cert);
    let key_file = write(dir.path(), "key.pem", &key);
    let p = Process::spawn(
        &dir.path().join("data"),
        &[
            ("TLS_CERT_FILE", cert_file.to_str().expect("path")),
            ("TLS_KEY_FILE", key_file.to_str().expect("path")),
            ("TLS_CLIENT_CA_FILE", ca_file.to_str().expect("path")),
        ],
    );
    let url = format!("https://localhost:{}/health", p.addr.port());
    assert!(
        status(&client(&ca.pem(), None), &url).is_err(),
        "no client certificate"
    );
    let stranger = leaf(&authority("another CA"), &["ingest"], true);
    assert!(
        status(&client(&ca.pem(), Some(&stranger)), &url).is_err(),
        "a certificate from another CA"
    );
    let service = leaf(&clients, &["ingest"], true);
    assert_eq!(status(&client(&ca.pem(), Some(&service)), &url), Ok(200));
}

#[test]
fn bad_or_mismatched_files_stop_start_up_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = authority("CA");
    let (cert, _) = leaf(&ca, &["localhost"], false);
    let (_, other_key) = leaf(&ca, &["localhost"], false);
    let cert_file = write(dir.path(), "cert.pem", &cert);
    let other_key_file = write(dir.path(), "other-key.pem", &other_key);
    let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
    let missing = dir.path().join("missing.pem");
    let data = dir.path().join("data");
    for (cert, key, needle) in [
        (
            &cert_file,
            &other_key_file,
            "other-key.pem: does not go with",
        ),
        (&garbage, &other_key_file, "garbage.pem: no certificate"),
        (&missing, &other_key_file, "missing.pem"),
        (&cert_file, &garbage, "garbage.pem: not a PEM private key"),
    ] {
        let out = binary()
            .arg("serve")
            .env("DATA_DIR", &data)
            .env("SERVICE_HOST", "127.0.0.1")
            .env("SERVICE_PORT", "0")
            .env("TLS_CERT_FILE", cert)
            .env("TLS_KEY_FILE", key)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{needle}: {err}");
        assert!(err.contains(needle), "{needle} not in: {err}");
    }
    let out = binary()
        .arg("serve")
        .env("DATA_DIR", &data)
        .env("TLS_CERT_FILE", &cert_file)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS_CERT_FILE is set but TLS_KEY_FILE is not"),
        "{err}"
    );
}
