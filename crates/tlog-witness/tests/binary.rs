//! The `tlog-witness` binary's flags and config file.

mod support;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{TestLog, client, drain, log_key, post, spawn_binary};
use tlog_checkpoint::CosignerKey;
use tlog_checkpoint::witness::add_cosignatures;

#[tokio::test]
async fn a_config_file_lists_the_logs_and_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"witness.example/file\"\nprefix = \"/w\"\n\n[[log]]\norigin = \"{}\"\nkeys = [\"{}\"]\n",
            support::ORIGIN,
            log_key().verifier()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let args = ["--config".to_string(), config.display().to_string()];
    let (_process, addr, mut stdout) = spawn_binary(&data, &args);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(line);
    }
    drain(stdout);
    let printed = lines
        .iter()
        .find_map(|l| l.strip_prefix("cosigner key "))
        .unwrap_or_else(|| panic!("{lines:?}"));
    let key = CosignerKey::parse(printed).unwrap();
    assert_eq!(key.name(), "witness.example/file");
    let file = std::fs::read_to_string(data.join("witness.vkey")).unwrap();
    assert_eq!(CosignerKey::parse(&file).unwrap(), key);

    let log = TestLog::new(log_key(), 100, None);
    let url = format!("http://{addr}/w/add-checkpoint");
    let answer = post(&client(), &url, log.request(0, 100)).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let note = add_cosignatures(&log.note(100), &answer.body).unwrap();
    tlog_checkpoint::verify_witnessed(&log_key().verifier(), &[key], 1, note.as_bytes()).unwrap();
}

#[test]
fn an_existing_key_refuses_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_key().verifier().to_string();
    let first = [
        "--name".to_string(),
        "witness.example/a".into(),
        "--log".into(),
        log.clone(),
    ];
    let (process, _, stdout) = spawn_binary(dir.path(), &first);
    drain(stdout);
    drop(process);
    let output = refused(dir.path(), &["--name", "witness.example/b", "--log", &log]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("witness.example/a"), "{stderr}");
}

#[test]
fn no_logs_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = refused(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no logs"));
}

/// Runs the witness with `args`, expecting it to refuse to start; one still running after 10 s is killed and
/// fails the test (rather than hanging it).
fn refused(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlog-witness"))
        .arg("--data")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the witness started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
