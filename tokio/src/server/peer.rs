//! What the server knows of a client's connection (its [`Peer`]) and the check of a
//! CONNECT against it ([`PeerCheck`]), run after the broker's own authorizer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mqtt_sansio::server::{Authorizer, Message, PublishDecision};
use mqtt_sansio::{ConnectReturnCode, Login, MqttString, QoS, TopicFilter};
use rustls_pki_types::CertificateDer;

/// What the server knows of a client's connection when it authorizes its CONNECT.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// The kind of listener it came through: `tcp`, `tls`, `ws` or `wss`.
    pub transport: &'static str,
    /// The client's certificate chain, end entity first (empty without mutual TLS).
    pub certificates: Vec<CertificateDer<'static>>,
    /// The ALPN protocol agreed on in the TLS handshake.
    pub alpn: Option<Vec<u8>>,
    /// The host name the client sent in SNI.
    pub server_name: Option<String>,
}

impl Peer {
    /// The subject common name (CN) of the client certificate, when there is one and it
    /// is a UTF8String, PrintableString or IA5String.
    pub fn certificate_cn(&self) -> Option<String> {
        self.certificates
            .first()
            .and_then(|c| crate::tls::subject_cn(c))
    }
}

/// A check of a CONNECT against the connection it came on: the peer and the client id
/// (empty when the client asked the server to assign one). `Err` refuses the
/// connection with that CONNACK return code. It runs after the broker's
/// [`Authorizer::connect`] accepted the client.
pub type PeerCheck = dyn Fn(&Peer, &str) -> Result<(), ConnectReturnCode> + Send + Sync;

/// A [`PeerCheck`] for AWS IoT Core's usual policy: the client certificate's subject CN
/// must equal the client id; without a certificate or a CN the client is not authorized
/// (CONNACK 5).
pub fn cn_is_client_id(peer: &Peer, client_id: &str) -> Result<(), ConnectReturnCode> {
    match peer.certificate_cn() {
        Some(cn) if cn == client_id => Ok(()),
        _ => Err(ConnectReturnCode::NotAuthorized),
    }
}

/// The peer whose bytes the broker is handling, for the [`PeerCheck`].
pub(super) type Current = Arc<Mutex<Option<Arc<Peer>>>>;

/// The broker's authorizer, followed by the [`PeerCheck`] for CONNECT.
pub(super) struct WithPeer {
    pub(super) inner: Arc<dyn Authorizer>,
    pub(super) check: Arc<PeerCheck>,
    pub(super) current: Current,
}

impl Authorizer for WithPeer {
    fn connect(
        &self,
        client_id: &MqttString<Bytes>,
        login: Option<&Login<Bytes>>,
    ) -> Result<(), ConnectReturnCode> {
        self.inner.connect(client_id, login)?;
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        match current.as_deref() {
            Some(peer) => (self.check)(peer, client_id.as_str()),
            None => Err(ConnectReturnCode::NotAuthorized),
        }
    }

    fn subscribe(
        &self,
        client_id: &MqttString<Bytes>,
        filter: &TopicFilter<Bytes>,
        requested: QoS,
    ) -> Option<QoS> {
        self.inner.subscribe(client_id, filter, requested)
    }

    fn publish(&self, client_id: &MqttString<Bytes>, message: &Message) -> PublishDecision {
        self.inner.publish(client_id, message)
    }
}
