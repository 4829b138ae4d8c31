//! A C2SP `tlog-witness` witness for any number of logs.
//!
//! A log sends `POST <prefix>/add-checkpoint` with the size the witness last cosigned, a consistency proof from
//! it, and its new signed checkpoint; the witness checks the log's signature and the proof against the
//! checkpoint it cosigned last for that origin, stores the new one durably, and answers with a timestamped
//! Ed25519 cosignature (tlog-cosignature, key type `0x04`). It never cosigns two roots for one size, nor a
//! smaller size after a larger one, across crashes included.
//!
//! Layers, each over the one below:
//! - [`check`]: the decision, without I/O: parse a request and decide the answer from the stored checkpoint.
//! - [`state`]: one durable file per origin holding the latest cosigned checkpoint note.
//! - [`Witness`]: the key, the configured logs and a lock per origin held from the check to the answer.
//! - [`http`]: the axum route, body and time limits, status codes.
//! - `main.rs`: the `tlog-witness` binary's flags and config file.
//!
//! In-process, e.g. in end-to-end tests:
//!
//! ```no_run
//! # async fn example(log_vkey: tlog_checkpoint::VerifierKey) -> tlog_witness::Result<()> {
//! use tlog_witness::{LogConfig, Witness, WitnessConfig};
//!
//! let running = Witness::start(WitnessConfig {
//!     data_dir: "witness-1".into(),
//!     name: Some("witness.example/w1".into()),
//!     logs: vec![LogConfig::from_key(log_vkey)],
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     ..WitnessConfig::default()
//! })
//! .await?;
//! // Give the log `running.url` and trust `running.started.cosigner_key`.
//! running.stop().await?;
//! # Ok(())
//! # }
//! ```

pub mod check;
pub mod config;
mod error;
pub mod http;
pub mod keyfile;
pub mod state;
mod witness;

pub use config::{LogConfig, WitnessConfig};
pub use error::{Error, Result};
pub use witness::{Running, Started, Witness, serve};
