//! The byte streams MQTT travels on: TCP, TLS over TCP, WebSocket over either. Each is
//! split into a [`Reader`] and a [`Writer`] that move bytes, so the drivers never see
//! the difference.
//!
//! Over WebSocket (MQTT 3.1.1 §6) every write is one binary frame; reading takes the
//! bytes of each binary frame in order, so a packet may span frames and a frame may
//! hold several packets (MQTT-6.0.0-2): the core's decoder sees one byte stream. A text
//! frame ends the connection (MQTT-6.0.0-1). The client offers the sub-protocol `mqtt`
//! and requires the server to select it (MQTT-6.0.0-3); the server requires the client
//! to offer it and selects it (MQTT-6.0.0-4).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use crate::Error;

/// The WebSocket sub-protocol of MQTT (§6).
pub(crate) const SUBPROTOCOL: &str = "mqtt";
const PROTOCOL_HEADER: &str = "Sec-WebSocket-Protocol";

/// A byte stream of any kind.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

type BoxIo = Box<dyn Io>;

/// The reading half of a connection.
pub(crate) enum Reader {
    Tcp(OwnedReadHalf),
    Stream(ReadHalf<BoxIo>),
    Ws(SplitStream<WebSocketStream<BoxIo>>),
}

/// The writing half of a connection.
pub(crate) enum Writer {
    Tcp(OwnedWriteHalf),
    Stream(WriteHalf<BoxIo>),
    Ws(SplitSink<WebSocketStream<BoxIo>, Message>),
}

/// The buffer a TLS connection's reader holds while it waits for bytes.
const IDLE_READ: usize = 64;

impl Reader {
    /// Appends what arrives to `buf`; `Ok(0)` at the end of the stream.
    pub(crate) async fn read(&mut self, buf: &mut BytesMut) -> Result<usize, Error> {
        match self {
            Reader::Tcp(r) => Ok(r.read_buf(buf).await?),
            Reader::Stream(r) => Ok(r.read_buf(buf).await?),
            Reader::Ws(r) => match Self::next_binary(r).await? {
                Some(data) => {
                    buf.extend_from_slice(&data);
                    Ok(data.len())
                }
                None => Ok(0),
            },
        }
    }

    /// Waits for what arrives next and returns it (at most about `max` bytes); empty
    /// at the end of the stream. While nothing arrives it holds no buffer over TCP and
    /// WebSocket (a binary frame's payload is returned as it is) and a small one over
    /// TLS: rustls keeps what it has decrypted, and the rest is taken without waiting.
    pub(crate) async fn read_chunk(&mut self, max: usize) -> Result<Bytes, Error> {
        match self {
            Reader::Tcp(r) => {
                r.readable().await?;
                let mut buf = BytesMut::with_capacity(max);
                r.read_buf(&mut buf).await?;
                Ok(buf.freeze())
            }
            Reader::Stream(r) => {
                let mut head = BytesMut::with_capacity(IDLE_READ);
                if r.read_buf(&mut head).await? == 0 || head.len() < IDLE_READ {
                    return Ok(head.freeze());
                }
                let mut buf = BytesMut::with_capacity(max.max(IDLE_READ));
                buf.extend_from_slice(&head);
                drop(head);
                while buf.len() < max {
                    match r.read_buf(&mut buf).now_or_never() {
                        None | Some(Ok(0)) => break,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(e.into()),
                    }
                }
                Ok(buf.freeze())
            }
            Reader::Ws(r) => Ok(Self::next_binary(r).await?.unwrap_or_default()),
        }
    }

    /// The payload of the next non-empty binary frame; `None` at the end of the stream.
    async fn next_binary(
        r: &mut SplitStream<WebSocketStream<BoxIo>>,
    ) -> Result<Option<Bytes>, Error> {
        loop {
            match r.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Binary(data))) if !data.is_empty() => return Ok(Some(data)),
                Some(Ok(Message::Text(_))) => {
                    return Err(Error::WebSocket(
                        "a text frame: MQTT travels in binary frames only (MQTT-6.0.0-1)".into(),
                    ));
                }
                // Empty binary frames, ping and pong (tungstenite answers pings).
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }
}

impl Writer {
    /// Writes all of `bytes` (over WebSocket: as one binary frame).
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self {
            Writer::Tcp(w) => Ok(w.write_all(bytes).await?),
            Writer::Stream(w) => {
                w.write_all(bytes).await?;
                Ok(w.flush().await?)
            }
            Writer::Ws(w) => Ok(w
                .send(Message::Binary(Bytes::copy_from_slice(bytes)))
                .await?),
        }
    }

    /// Ends the writing side: TCP FIN, TLS close_notify, WebSocket close frame.
    pub(crate) async fn shutdown(&mut self) -> Result<(), Error> {
        match self {
            Writer::Tcp(w) => Ok(w.shutdown().await?),
            Writer::Stream(w) => Ok(w.shutdown().await?),
            Writer::Ws(w) => Ok(w.close().await?),
        }
    }
}

fn split_tcp(tcp: TcpStream) -> (Reader, Writer) {
    let _ = tcp.set_nodelay(true);
    let (r, w) = tcp.into_split();
    (Reader::Tcp(r), Writer::Tcp(w))
}

fn split_io(io: BoxIo) -> (Reader, Writer) {
    let (r, w) = tokio::io::split(io);
    (Reader::Stream(r), Writer::Stream(w))
}

fn split_ws(ws: WebSocketStream<BoxIo>) -> (Reader, Writer) {
    let (w, r) = ws.split();
    (Reader::Ws(r), Writer::Ws(w))
}

/// Where a client connects, parsed from a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) tls: bool,
    pub(crate) ws: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The WebSocket path (with its leading `/`).
    pub(crate) path: String,
}

impl Url {
    /// `mqtt://host[:port]`, `mqtts://…`, `ws://host[:port][/path]`, `wss://…`. Default
    /// ports 1883, 8883, 80 and 443; the default WebSocket path is `/mqtt`. An IPv6
    /// host is written in brackets.
    pub(crate) fn parse(url: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::Config(format!("URL {url}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("no scheme (mqtt://, mqtts://, ws:// or wss://)"))?;
        let (tls, ws, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => (false, false, 1883),
            "mqtts" | "ssl" => (true, false, 8883),
            "ws" => (false, true, 80),
            "wss" => (true, true, 443),
            _ => return Err(bad("unknown scheme (mqtt, mqtts, ws or wss)")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !(ws || path.is_empty() || path == "/") {
            return Err(bad("a path is only meaningful for ws:// and wss://"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
            None => default_port,
        };
        let path = if path.is_empty() { "/mqtt" } else { path };
        Ok(Url {
            tls,
            ws,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// Opens a client connection to `url`: TCP, then TLS with `tls` (for `mqtts`/`wss`),
/// then the WebSocket handshake (for `ws`/`wss`).
pub(crate) async fn connect(
    url: &Url,
    tls: Option<(Arc<ClientConfig>, rustls_pki_types::ServerName<'static>)>,
) -> Result<(Reader, Writer), Error> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
    let io: BoxIo = match tls {
        Some((config, name)) if url.tls => {
            let _ = tcp.set_nodelay(true);
            Box::new(TlsConnector::from(config).connect(name, tcp).await?)
        }
        Some(_) | None if url.tls => {
            return Err(Error::Config("TLS settings are missing".into()));
        }
        _ if !url.ws => return Ok(split_tcp(tcp)),
        _ => {
            let _ = tcp.set_nodelay(true);
            Box::new(tcp)
        }
    };
    if !url.ws {
        return Ok(split_io(io));
    }
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let scheme = if url.tls { "wss" } else { "ws" };
    let mut request = format!("{scheme}://{host}:{}{}", url.port, url.path)
        .into_client_request()
        .map_err(Error::from)?;
    request
        .headers_mut()
        .insert(PROTOCOL_HEADER, HeaderValue::from_static(SUBPROTOCOL));
    let (ws, response) = tokio_tungstenite::client_async(request, io).await?;
    let selected = response
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok());
    if selected != Some(SUBPROTOCOL) {
        return Err(Error::WebSocket(format!(
            "the server selected the sub-protocol {selected:?}, not \"mqtt\" (MQTT-6.0.0-4)"
        )));
    }
    Ok(split_ws(ws))
}

/// How a listener speaks: plain TCP or TLS, raw MQTT or WebSocket.
#[derive(Clone)]
pub(crate) struct Accept {
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) ws: bool,
}

/// A server's connection once its handshakes are done.
pub(crate) enum Stream {
    /// Plain TCP, whole: one task reads it and the core task writes it directly.
    Tcp(TcpStream),
    /// TLS or WebSocket, split into its reading and writing halves.
    Split(Reader, Writer),
}

/// What the server learns of a connection during the handshakes.
pub(crate) struct Accepted {
    pub(crate) stream: Stream,
    /// The client's certificate chain (mutual TLS), end entity first.
    pub(crate) certificates: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// The ALPN protocol agreed on.
    pub(crate) alpn: Option<Vec<u8>>,
    /// The name the client sent in SNI.
    pub(crate) server_name: Option<String>,
}

impl Accepted {
    /// A plain TCP connection, which needs no handshake.
    pub(crate) fn tcp(tcp: TcpStream) -> Accepted {
        let _ = tcp.set_nodelay(true);
        Accepted {
            stream: Stream::Tcp(tcp),
            certificates: Vec::new(),
            alpn: None,
            server_name: None,
        }
    }
}

impl Accept {
    pub(crate) fn new(tls: Option<Arc<ServerConfig>>, ws: bool) -> Accept {
        Accept {
            tls: tls.map(TlsAcceptor::from),
            ws,
        }
    }

    /// Whether the listener speaks MQTT on plain TCP, with no handshake to run.
    pub(crate) fn is_plain(&self) -> bool {
        self.tls.is_none() && !self.ws
    }

    /// Runs the TLS and WebSocket handshakes a listener of this kind needs.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> Result<Accepted, Error> {
        let _ = tcp.set_nodelay(true);
        let mut certificates = Vec::new();
        let mut alpn = None;
        let mut server_name = None;
        let io: BoxIo = match &self.tls {
            Some(acceptor) => {
                let stream = acceptor.accept(tcp).await?;
                let (_, session) = stream.get_ref();
                if let Some(chain) = session.peer_certificates() {
                    certificates = chain.iter().map(|c| c.clone().into_owned()).collect();
                }
                alpn = session.alpn_protocol().map(<[u8]>::to_vec);
                server_name = session.server_name().map(str::to_string);
                Box::new(stream)
            }
            None if !self.ws => return Ok(Accepted::tcp(tcp)),
            None => Box::new(tcp),
        };
        let (reader, writer) = if self.ws {
            split_ws(tokio_tungstenite::accept_hdr_async(io, select_mqtt).await?)
        } else {
            split_io(io)
        };
        Ok(Accepted {
            stream: Stream::Split(reader, writer),
            certificates,
            alpn,
            server_name,
        })
    }
}

/// The server side of MQTT-6.0.0-3/4: the client must offer `mqtt`, and the server
/// selects it.
#[allow(clippy::result_large_err)]
fn select_mqtt(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all(PROTOCOL_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offered {
        let mut refusal = ErrorResponse::new(Some(
            "the WebSocket sub-protocol \"mqtt\" is required".to_string(),
        ));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response
        .headers_mut()
        .insert(PROTOCOL_HEADER, HeaderValue::from_static(SUBPROTOCOL));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_url_keeps_its_path_and_defaults_to_mqtt() {
        let path = |u: &str| Url::parse(u).map(|u| u.path);
        assert_eq!(path("ws://h/devices/d1?x=1").unwrap(), "/devices/d1?x=1");
        assert_eq!(path("wss://h:8443").unwrap(), "/mqtt");
        assert_eq!(path("ws://h/").unwrap(), "/");
        assert!(path("mqtt://h/x").is_err());
    }

    #[tokio::test]
    async fn the_websocket_handshake_asks_for_the_path_of_the_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Reads the request head and closes without answering.
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        });
        let url = Url::parse(&format!("ws://127.0.0.1:{port}/devices/d1/mqtt")).unwrap();
        assert!(connect(&url, None).await.is_err());
        assert_eq!(server.await.unwrap(), "GET /devices/d1/mqtt HTTP/1.1");
    }
}
