//! What tlog's long-running binaries (`tlogd`, `tlog-witness`) do the same way, defined once: where their log
//! lines go and how they look, and which signals stop them. Process plumbing only: no log or witness logic.

use std::io::IsTerminal;

/// Sends `tracing` output to standard error, filtered by `RUST_LOG` (default `info`), as JSON lines when `json`.
/// Call once, at start.
pub fn init_logging(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour());
    if json {
        logs.json().init()
    } else {
        logs.init()
    }
}

/// Colour in log lines only where a person reads them: a terminal, unless NO_COLOR is set (no-color.org: set
/// and not empty). Redirected to a file or a pipe, escape sequences would be noise in every line.
fn log_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// [`shutdown_signal`], then a log line saying what stopping means (`what`, e.g. "finishing the batch in flight").
pub async fn shutdown_logged(what: &'static str) {
    shutdown_signal().await;
    tracing::info!(
        "shutting down{}{what}",
        if what.is_empty() { "" } else { ": " }
    );
}

/// The exit status of a server that ran until stopped: success, or the error printed as `program: error` and
/// failure.
pub fn exit_status<E: std::fmt::Display>(
    program: &str,
    result: Result<(), E>,
) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what systemd and container runtimes send to stop a
/// service).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
