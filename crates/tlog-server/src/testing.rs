//! Test-only (feature `test-util`): a [`Server`] run inside the test process on port-0 listeners, for tests about
//! the answers to requests rather than about the `tlogd` process.

use std::net::SocketAddr;

use tlog_proto::v1::{GetCheckpointRequest, Receipt, SubmitBatchRequest};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Result;
use crate::server::{Listeners, Server, ServerConfig};

/// The raw generated gRPC client: tests about answers see every status and field as a user's client would.
pub type Rpc = tlog_proto::LogClient<tonic::transport::Channel>;

/// A server serving gRPC (and HTTP, unless the config turns it off) on `127.0.0.1:<port 0>` in a task of the
/// current runtime until [`Running::stop`].
pub struct Running {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// The HTTP (tlog-tiles) address; `None` when `config.http_listen` was `None`.
    pub http_addr: Option<SocketAddr>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Opens the log `config` describes (its addresses are ignored: both listeners bind port 0; HTTP only when
    /// `http_listen` is set) and serves it; panics if it cannot.
    pub async fn start(config: ServerConfig) -> Running {
        let port_0: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let http = config.http_listen.map(|_| port_0);
        let server = Server::open(config).expect("opening the server");
        let listeners = Listeners::bind(port_0, http).await.expect("binding port 0");
        let (addr, http_addr) = listeners.addrs().expect("listener addresses");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listeners, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            http_addr,
            stop,
            task,
        }
    }

    /// Starts a log of `origin` over a new temporary data folder (returned: the log lives as long as it does),
    /// with fsync off (these tests are about answers, not durability) and the rest of the default configuration
    /// as `adjust` changes it: how the in-process tests start their logs.
    pub async fn start_temporary(
        origin: &str,
        adjust: impl FnOnce(&mut ServerConfig),
    ) -> (Running, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary data folder");
        let mut config = ServerConfig {
            data_dir: dir.path().to_path_buf(),
            origin: Some(origin.to_owned()),
            ..ServerConfig::default()
        };
        config.rocks.sync = false;
        adjust(&mut config);
        (Running::start(config).await, dir)
    }

    /// `http://<addr>`, for gRPC clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A raw gRPC client of this server; panics if it cannot connect.
    pub async fn rpc(&self) -> Rpc {
        Rpc::connect(self.url())
            .await
            .expect("connecting to the test server")
    }

    /// `http://<http_addr>`, the tlog-tiles prefix; panics if HTTP is off.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr.expect("HTTP is on"))
    }

    /// Stops the server gracefully (clients must have closed their connections) and returns what its run
    /// returned; panics if it had already stopped or its task panicked.
    pub async fn stop(self) -> Result<()> {
        self.stop.send(()).expect("the server was still running");
        self.task.await.expect("the server task panicked")
    }
}

/// Appends `entries` with one SubmitBatch (so one new checkpoint); panics on any error.
pub async fn submit_batch(rpc: &mut Rpc, entries: Vec<Vec<u8>>) -> Vec<Receipt> {
    rpc.submit_batch(SubmitBatchRequest {
        entries,
        ..Default::default()
    })
    .await
    .expect("SubmitBatch")
    .into_inner()
    .receipts
}

/// The tree size of the log's latest checkpoint; panics on any error.
pub async fn tree_size(rpc: &mut Rpc) -> u64 {
    rpc.get_checkpoint(GetCheckpointRequest::default())
        .await
        .expect("GetCheckpoint")
        .into_inner()
        .size
}
