//! Running the `tlog` binary as a user would, isolated from the caller's `TLOG_*` environment, the assertions
//! the CLI tests make on its exit code and output, and a static file server standing in for a log's tile mirror.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::bin;

/// Runs `tlog args…`, with `stdin` piped in when given, and returns what it did.
pub fn tlog(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(bin("tlog"));
    cmd.args(args)
        .env_remove("TLOG_SERVER")
        .env_remove("TLOG_VERIFIER_KEY")
        .env_remove("TLOG_TOKEN")
        .env_remove("TLOG_CA_CERT")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tlog");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(data).unwrap();
    }
    child.wait_with_output().expect("wait for tlog")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns standard output.
#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "tlog failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Asserts success and parses the single JSON value on standard output.
#[track_caller]
pub fn ok_json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts failure with exit `code` and a message containing `needle`; returns standard error.
#[track_caller]
pub fn fails(out: Output, code: i32, needle: &str) -> String {
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}\nstdout: {}\nstderr: {err}",
        stdout(&out)
    );
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    err
}

/// A static HTTP server of a folder below `/log/`, standing in for a log's tile mirror: entry bundles go out
/// gzip-encoded (the spec allows it without negotiation, so clients must decode it). It runs on a runtime of its
/// own and stops when dropped.
pub struct StaticServer {
    /// `http://127.0.0.1:PORT/log`
    pub url: String,
    _runtime: tokio::runtime::Runtime,
    _files: Option<tempfile::TempDir>,
}

impl StaticServer {
    /// Serves the files below `dir`, as they are at each request.
    pub fn dir(dir: PathBuf) -> StaticServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(move |uri: Uri| {
            let dir = dir.clone();
            async move { static_file(&dir, uri.path()) }
        });
        runtime.spawn(async move { axum::serve(listener, app).await });
        StaticServer {
            url: format!("http://{addr}/log"),
            _runtime: runtime,
            _files: None,
        }
    }

    /// Serves `files` (path → body).
    pub fn files(files: &[(String, Vec<u8>)]) -> StaticServer {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            write_file(dir.path(), path, body);
        }
        let mut server = StaticServer::dir(dir.path().to_owned());
        server._files = Some(dir);
        server
    }
}

/// Writes `body` at `path` below `dir`, creating the folders on the way.
pub fn write_file(dir: &Path, path: &str, body: &[u8]) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, body).unwrap();
}

fn static_file(dir: &Path, path: &str) -> Response {
    let Some(rel) = path.strip_prefix("/log/").filter(|p| !p.contains("..")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(body) = std::fs::read(dir.join(rel)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if rel == "checkpoint" {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    if rel.starts_with("tile/entries/") {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&body).unwrap();
        let headers = [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_ENCODING, "gzip"),
        ];
        return (headers, gz.finish().unwrap()).into_response();
    }
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}
