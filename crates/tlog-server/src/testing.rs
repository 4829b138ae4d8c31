//! Test-only (feature `test-util`): a [`Server`] run inside the test process on a port-0 listener, for tests about
//! the answers to requests rather than about the `tlogd` process.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Result;
use crate::server::{Server, ServerConfig};

/// A server serving on `127.0.0.1:<port 0>` in a task of the current runtime until [`Running::stop`].
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl Running {
    /// Opens the log `config` describes (its `listen` is ignored) and serves it; panics if it cannot.
    pub async fn start(config: ServerConfig) -> Running {
        let server = Server::open(config).expect("opening the server");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding port 0");
        let addr = listener.local_addr().expect("listener address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(listener, async move {
            let _ = stopped.await;
        }));
        Running { addr, stop, task }
    }

    /// `http://<addr>`, for gRPC clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server gracefully (clients must have closed their connections) and returns what its run
    /// returned; panics if it had already stopped or its task panicked.
    pub async fn stop(self) -> Result<()> {
        self.stop.send(()).expect("the server was still running");
        self.task.await.expect("the server task panicked")
    }
}
