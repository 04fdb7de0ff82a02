//! TLS with rustls (the `ring` provider): the client's settings, the server's
//! configuration from PEM files, and the subject CN of a peer certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::Error;

/// The ALPN protocol AWS IoT Core expects for MQTT with an X.509 client certificate on
/// port 443.
pub const ALPN_AWS_IOT: &[u8] = b"x-amzn-mqtt-ca";
/// The ALPN protocol name for MQTT.
pub const ALPN_MQTT: &[u8] = b"mqtt";

/// The client's TLS settings (used by `mqtts://` and `wss://` URLs). The default
/// verifies the server against the platform's root certificates, sends no client
/// certificate and offers no ALPN protocol. TLS 1.2 and 1.3 are both offered.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of the CA certificates the server's chain must lead to; `None`: the
    /// platform's root certificates.
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain (mutual TLS); needs
    /// [`key_file`](Self::key_file).
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub key_file: Option<PathBuf>,
    /// ALPN protocols to offer, in order of preference (for AWS IoT Core on port 443:
    /// [`ALPN_AWS_IOT`]).
    pub alpn: Vec<Vec<u8>>,
    /// The name sent in SNI and checked against the server certificate; `None`: the
    /// URL's host.
    pub server_name: Option<String>,
    /// Accept a server certificate issued for another host name (the chain, validity
    /// and signature are still checked). Like mosquitto_pub's `--insecure`: for tests only.
    pub insecure: bool,
}

/// The `ring` provider: pure Rust and assembly, no C toolchain or cmake needed (rustls
/// marks it deprecated only for lacking post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn pem_error(path: &Path, why: impl ToString) -> Error {
    Error::Pem {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Every certificate in a PEM file; an error when there is none.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in certificates(path)? {
                store.add(cert).map_err(|e| pem_error(path, e))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::Config(format!(
                    "no usable root certificate on this platform ({} errors); give a CA file",
                    found.errors.len()
                )));
            }
        }
    }
    Ok(store)
}

impl TlsOptions {
    /// The rustls configuration these settings describe.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = provider();
        let roots = Arc::new(roots(self.ca_file.as_deref())?);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(Error::Tls)?;
        let builder = if self.insecure {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| Error::Config(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(inner)))
        } else {
            builder.with_root_certificates(roots)
        };
        let mut config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(certificates(cert)?, private_key(key)?)
                .map_err(Error::Tls)?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(Error::Config(
                    "a client certificate needs both a certificate and a key file".into(),
                ));
            }
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }

    /// The name for SNI and certificate verification: the override or `host`.
    pub(crate) fn server_name(&self, host: &str) -> Result<ServerName<'static>, Error> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string())
            .map_err(|e| Error::Config(format!("TLS server name {name}: {e}")))
    }
}

/// The server's TLS configuration from PEM files: its certificate chain and key, and
/// with `client_ca` a CA whose certificates every client must present (mutual TLS; a
/// client without one fails the handshake). TLS 1.2 and 1.3. ALPN: `mqtt` and
/// `x-amzn-mqtt-ca` are selected when the client offers them; a client that offers no
/// ALPN connects too, one that offers only other protocols fails the handshake
/// (RFC 7301).
pub fn server_tls(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(Error::Tls)?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(Some(ca))?), provider)
                    .build()
                    .map_err(|e| pem_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certificates(cert)?, private_key(key)?)
        .map_err(|e| pem_error(key, e))?;
    config.alpn_protocols = vec![ALPN_MQTT.to_vec(), ALPN_AWS_IOT.to_vec()];
    Ok(Arc::new(config))
}

/// A server verifier that checks everything but the host name (`--insecure`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One DER element: its tag, its contents and what follows it. `None` for anything
/// that is not well-formed DER with a one-byte tag and a length of at most four bytes.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// id-at-commonName, 2.5.4.3.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

/// The subject common name (CN) of an X.509 certificate in DER: the last CN of the
/// subject, as UTF-8. `None` when the certificate has no CN, holds it in a string type
/// other than UTF8String, PrintableString or IA5String, or is not well-formed.
pub(crate) fn subject_cn(der: &[u8]) -> Option<String> {
    let (SEQUENCE, cert, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // The optional explicit [0] version comes first.
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer, validity; then subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, mut rdns, _) = tlv(rest)? else {
        return None;
    };
    let mut cn = None;
    while !rdns.is_empty() {
        let (SET, mut attributes, next) = tlv(rdns)? else {
            return None;
        };
        rdns = next;
        while !attributes.is_empty() {
            let (SEQUENCE, attribute, next) = tlv(attributes)? else {
                return None;
            };
            attributes = next;
            let (OID, oid, value) = tlv(attribute)? else {
                return None;
            };
            if oid == CN_OID {
                let (tag, text, _) = tlv(value)?;
                // UTF8String, PrintableString, IA5String.
                cn = match tag {
                    0x0c | 0x13 | 0x16 => Some(String::from_utf8(text.to_vec()).ok()?),
                    _ => None,
                };
            }
        }
    }
    cn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_with_subject(dn: rcgen::DistinguishedName) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_subject_cn_is_read_from_a_generated_certificate() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example Org");
        dn.push(rcgen::DnType::CommonName, "device-42");
        dn.push(rcgen::DnType::CountryName, "DE");
        let der = certificate_with_subject(dn);
        assert_eq!(subject_cn(&der).as_deref(), Some("device-42"));
    }

    #[test]
    fn a_certificate_without_a_cn_has_none() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example Org");
        let der = certificate_with_subject(dn);
        assert_eq!(subject_cn(&der), None);
    }

    #[test]
    fn every_truncation_of_a_certificate_gives_none_or_the_cn_without_panicking() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, "truncated");
        let der = certificate_with_subject(dn);
        for len in 0..der.len() {
            // A prefix drops the outer length's worth of bytes: never well-formed.
            assert_eq!(subject_cn(&der[..len]), None, "prefix of {len} bytes");
        }
        // Flipping any byte never panics.
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            let _ = subject_cn(&bad);
        }
    }

    #[test]
    fn a_length_longer_than_the_input_is_not_well_formed() {
        assert_eq!(tlv(&[0x30, 0x05, 0x01]), None);
        assert_eq!(tlv(&[0x30, 0x82, 0x01]), None);
        assert_eq!(tlv(&[0x1f, 0x00]), None);
        assert_eq!(
            tlv(&[0x04, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
    }
}
