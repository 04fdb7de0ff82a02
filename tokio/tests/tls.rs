//! TLS between the crate's client and server, with certificates made by the test: mutual
//! TLS, TLS 1.2 and 1.3, ALPN, SNI, and every failure the issue names, each a typed
//! error within the time limit.

mod support;

use std::sync::Arc;

use mqtt_sansio::{ConnectReturnCode, QoS};
use mqtt_sansio_tokio::rustls::{self, CertificateError};
use mqtt_sansio_tokio::{
    ALPN_AWS_IOT, Client, Error, Listener, Options, TlsOptions, cn_is_client_id, server_tls,
};
use support::{LIMIT, Pki, Running, any_port, serve};

fn tls_options(pki: &Pki, client_cert: bool) -> TlsOptions {
    TlsOptions {
        ca_file: Some(pki.path("ca.pem")),
        cert_file: client_cert.then(|| pki.path("client.pem")),
        key_file: client_cert.then(|| pki.path("client.key")),
        ..TlsOptions::default()
    }
}

async fn connect(url: String, client_id: &str, tls: TlsOptions) -> Result<Client, Error> {
    let mut o = Options::new(url);
    o.client_id = client_id.to_string();
    o.tls = tls;
    let connected = tokio::time::timeout(LIMIT, Client::connect(o))
        .await
        .expect("connect returns within the limit, without hanging");
    connected.map(|(client, _)| client)
}

async fn round_trip(client: &Client) {
    client
        .publish("tls/t", QoS::AtLeastOnce, false, "over TLS")
        .await
        .expect("the QoS 1 publish is acknowledged");
}

#[tokio::test]
async fn a_client_with_a_certificate_publishes_through_a_broker_that_requires_one() {
    let pki = Pki::new();
    let config = server_tls(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        Some(&pki.path("ca.pem")),
    )
    .unwrap();
    let server = serve(vec![Listener::Tls(any_port(), config)], None).await;
    let url = format!("mqtts://localhost:{}", server.addrs[0].port());
    let client = connect(url, "device-1", tls_options(&pki, true))
        .await
        .unwrap();
    round_trip(&client).await;
    client.disconnect().await.unwrap();
    server.stop().await;
}

#[allow(deprecated)]
async fn with_one_version(version: &'static rustls::SupportedProtocolVersion) {
    let pki = Pki::new();
    let base = server_tls(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    // The same certificate and key, offered with a single protocol version.
    let certs = vec![rustls_pki_types_cert(&pki.path("server.pem"))];
    let key = rustls_pki_types_key(&pki.path("server.key"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut only = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    only.alpn_protocols = base.alpn_protocols.clone();
    let server = serve(vec![Listener::Tls(any_port(), Arc::new(only))], None).await;
    let url = format!("mqtts://127.0.0.1:{}", server.addrs[0].port());
    let client = connect(url, "v", tls_options(&pki, false)).await.unwrap();
    round_trip(&client).await;
    client.disconnect().await.unwrap();
    server.stop().await;
}

fn rustls_pki_types_cert(path: &std::path::Path) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(path).unwrap()
}

fn rustls_pki_types_key(path: &std::path::Path) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_file(path).unwrap()
}

#[tokio::test]
async fn the_client_speaks_tls_1_2_to_a_server_that_offers_only_1_2() {
    with_one_version(&rustls::version::TLS12).await;
}

#[tokio::test]
async fn the_client_speaks_tls_1_3_to_a_server_that_offers_only_1_3() {
    with_one_version(&rustls::version::TLS13).await;
}

#[tokio::test]
async fn the_broker_sees_the_alpn_protocol_and_the_sni_name_the_client_sent() {
    let pki = Pki::new();
    let config = server_tls(&pki.path("server.pem"), &pki.path("server.key"), None).unwrap();
    // The check accepts only a connection that negotiated x-amzn-mqtt-ca with SNI
    // localhost; any other connection is refused.
    let server = serve(
        vec![Listener::Tls(any_port(), config)],
        Some(|peer, _| {
            if peer.alpn.as_deref() == Some(ALPN_AWS_IOT)
                && peer.server_name.as_deref() == Some("localhost")
            {
                Ok(())
            } else {
                Err(ConnectReturnCode::NotAuthorized)
            }
        }),
    )
    .await;
    let port = server.addrs[0].port();
    let mut tls = tls_options(&pki, false);
    tls.alpn = vec![ALPN_AWS_IOT.to_vec()];
    let client = connect(format!("mqtts://localhost:{port}"), "a", tls.clone())
        .await
        .unwrap();
    client.disconnect().await.unwrap();
    // Without ALPN the same check refuses.
    tls.alpn.clear();
    let refused = connect(format!("mqtts://localhost:{port}"), "a", tls).await;
    assert!(
        matches!(
            refused,
            Err(Error::Refused(ConnectReturnCode::NotAuthorized))
        ),
        "{refused:?}"
    );
    server.stop().await;
}

/// A TLS broker presenting the PKI's `name.pem`/`name.key`, and the URL that reaches it
/// as `localhost`.
async fn serving_certificate(pki: &Pki, name: &str) -> (Running, String) {
    let config = server_tls(
        &pki.path(&format!("{name}.pem")),
        &pki.path(&format!("{name}.key")),
        None,
    )
    .unwrap();
    let server = serve(vec![Listener::Tls(any_port(), config)], None).await;
    let url = format!("mqtts://localhost:{}", server.addrs[0].port());
    (server, url)
}

#[tokio::test]
async fn a_server_certificate_from_an_unknown_ca_fails_with_unknown_issuer() {
    let pki = Pki::new();
    let (server, url) = serving_certificate(&pki, "rogue").await;
    let e = connect(url, "x", tls_options(&pki, false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ),
        "{e:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_expired_server_certificate_fails_as_expired() {
    let pki = Pki::new();
    let (server, url) = serving_certificate(&pki, "expired").await;
    let e = connect(url, "x", tls_options(&pki, false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Tls(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ))
        ),
        "{e:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_with_a_name_mismatch_unless_insecure() {
    let pki = Pki::new();
    let (server, url) = serving_certificate(&pki, "other").await;
    let e = connect(url.clone(), "x", tls_options(&pki, false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Tls(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{e:?}"
    );
    // --insecure skips the name check only.
    let mut insecure = tls_options(&pki, false);
    insecure.insecure = true;
    let client = connect(url, "x", insecure).await.unwrap();
    client.disconnect().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_by_a_broker_that_requires_one() {
    let pki = Pki::new();
    let config = server_tls(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        Some(&pki.path("ca.pem")),
    )
    .unwrap();
    let server = serve(vec![Listener::Tls(any_port(), config)], None).await;
    let url = format!("mqtts://localhost:{}", server.addrs[0].port());
    let e = connect(url, "x", tls_options(&pki, false))
        .await
        .unwrap_err();
    // TLS 1.3: the server's alert arrives after the client's handshake is done.
    assert!(
        matches!(
            e,
            Error::Tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired
            ))
        ),
        "{e:?}"
    );
    assert!(server.counters.handshakes_failed() >= 1);
    server.stop().await;
}

#[tokio::test]
async fn a_client_id_other_than_the_certificate_cn_is_not_authorized_when_required() {
    let pki = Pki::new();
    let config = server_tls(
        &pki.path("server.pem"),
        &pki.path("server.key"),
        Some(&pki.path("ca.pem")),
    )
    .unwrap();
    let server = serve(
        vec![Listener::Tls(any_port(), config)],
        Some(cn_is_client_id),
    )
    .await;
    let url = format!("mqtts://localhost:{}", server.addrs[0].port());
    let e = connect(url.clone(), "device-2", tls_options(&pki, true))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Refused(ConnectReturnCode::NotAuthorized)),
        "{e:?}"
    );
    let client = connect(url, "device-1", tls_options(&pki, true))
        .await
        .unwrap();
    round_trip(&client).await;
    client.disconnect().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn unreadable_pem_files_are_typed_errors_naming_the_file() {
    let pki = Pki::new();
    let missing = pki.path("nope.pem");
    let e = server_tls(&missing, &pki.path("server.key"), None).unwrap_err();
    assert!(
        matches!(&e, Error::Pem { path, .. } if path == &missing),
        "{e:?}"
    );
    // A key file where a certificate should be: no certificate in it.
    let e = server_tls(&pki.path("server.key"), &pki.path("server.key"), None).unwrap_err();
    assert!(matches!(&e, Error::Pem { .. }), "{e:?}");
    let mut o = Options::new("mqtts://localhost:1");
    o.tls.ca_file = Some(missing);
    let e = Client::connect(o).await.unwrap_err();
    assert!(matches!(e, Error::Pem { .. }), "{e:?}");
}
