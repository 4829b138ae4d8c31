//! tlogd's own output when it goes to a file, as under systemd or `tlogd ... > tlogd.log 2>&1`: plain text, no
//! terminal escape sequences. A process-level test: what is checked is the process's file descriptors.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tlog_suite::bin;

/// Starts tlogd with stdout and stderr both on one file, waits until it listens, stops it with SIGTERM (which
/// logs a line at INFO) and returns the file's bytes.
fn run_redirected(extra_env: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("tlogd.log");
    let log = File::create(&log_path).unwrap();
    let mut command = Command::new(bin("tlogd"));
    command
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log_path)
        .unwrap()
        .contains("listening on")
    {
        assert!(Instant::now() < deadline, "tlogd did not start");
        assert!(child.try_wait().unwrap().is_none(), "tlogd exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::read(&log_path).unwrap()
}

#[test]
fn redirected_output_has_no_escape_sequences() {
    let bytes = run_redirected(&[]);
    let text = String::from_utf8_lossy(&bytes);
    // The SIGTERM line is a tracing line: without it, this test would check only the plain println! lines.
    assert!(
        text.contains("INFO") && text.contains("shutting down"),
        "{text}"
    );
    assert!(
        !bytes.contains(&0x1b),
        "escape bytes in tlogd's redirected output:\n{text:?}"
    );
}
