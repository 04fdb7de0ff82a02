//! Shared by the integration tests: certificates made at run time (nothing secret is
//! committed) and a server on free ports.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mqtt_sansio::{BrokerConfig, ConnectReturnCode, Profile};
use mqtt_sansio_tokio::{Client, Listener, Messages, Options, Peer, Server};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    date_time_ymd,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a test may wait for before it fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(15);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system's temporary one (not created), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A path no other test of this process uses; `what` names it for a reader.
    pub fn new(what: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "mqtt-sansio-tokio-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory of PEM files, removed when dropped.
pub struct Pki {
    pub dir: PathBuf,
    _owner: TempDir,
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    /// `ca.pem`; `server.pem`/`server.key` for localhost and 127.0.0.1; `other.pem` (a
    /// server certificate for another host name); `expired.pem` (the server's names,
    /// expired in 2020); `client.pem` (CN `device-1`); `rogue-ca.pem` and `rogue.pem`
    /// (a CA nobody trusts and a server certificate it issued). Each with its `.key`.
    pub fn new() -> Pki {
        let owner = TempDir::new("pki");
        let dir = owner.0.clone();
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir, _owner: owner };
        let ca = make_ca("test CA");
        let rogue = make_ca("rogue CA");
        pki.write("ca.pem", &ca.pem());
        pki.write("rogue-ca.pem", &rogue.pem());
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        pki.issue("server", names.clone(), "localhost", &ca, false);
        pki.issue(
            "other",
            vec!["other.example".into()],
            "other.example",
            &ca,
            false,
        );
        pki.issue("expired", names.clone(), "localhost", &ca, true);
        pki.issue("client", Vec::new(), "device-1", &ca, false);
        pki.issue("rogue", names, "localhost", &rogue, false);
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn issue(
        &self,
        name: &str,
        sans: Vec<String>,
        cn: &str,
        issuer: &CertifiedIssuer<'static, KeyPair>,
        expired: bool,
    ) {
        let mut params = CertificateParams::new(sans).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}.key"), &key.serialize_pem());
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A running server and the means to stop it.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    pub counters: mqtt_sansio_tokio::Counters,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), mqtt_sansio_tokio::Error>>>,
}

impl Running {
    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(LIMIT, task)
                .await
                .expect("the server stops in time")
                .expect("the server task")
                .expect("the server ends without error");
        }
    }
}

/// A peer check as a plain function.
pub type CheckFn = fn(&Peer, &str) -> Result<(), ConnectReturnCode>;

/// A server with `listeners` (ports 0) and an optional peer check.
pub async fn serve(listeners: Vec<Listener>, check: Option<CheckFn>) -> Running {
    serve_with(BrokerConfig::default(), listeners, check).await
}

/// [`serve`] with the broker's settings `config` (profile `mqtt311`).
pub async fn serve_with(
    config: BrokerConfig,
    listeners: Vec<Listener>,
    check: Option<CheckFn>,
) -> Running {
    let mut server = Server::new(Profile::mqtt311(), config);
    if let Some(check) = check {
        server.check_peer(check);
    }
    run(server, listeners).await
}

/// Runs `server`, set up as a test needs, with `listeners` (ports 0).
pub async fn run(mut server: Server, listeners: Vec<Listener>) -> Running {
    let mut addrs = Vec::new();
    for l in listeners {
        addrs.push(server.listen(l).await.expect("bind"));
    }
    let counters = server.counters();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running {
        addrs,
        counters,
        stop: Some(stop),
        task: Some(task),
    }
}

/// 127.0.0.1 port 0.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A client connected to `url` as `id`, within [`LIMIT`].
pub async fn connect_client(url: &str, id: &str) -> (Client, Messages) {
    let mut o = Options::new(url.to_string());
    o.client_id = id.to_string();
    tokio::time::timeout(LIMIT, Client::connect(o))
        .await
        .expect("connects in time")
        .expect("connects")
}
