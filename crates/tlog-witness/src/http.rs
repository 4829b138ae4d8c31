//! The HTTP layer, kept thin: one route, `POST <prefix>/add-checkpoint`, a body limit enforced before anything is
//! parsed (413), a time limit per request (503), and the mapping of [`Error`] to the status codes and bodies of
//! tlog-witness. The work itself is [`Witness::add_checkpoint`], run on a blocking thread.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use tlog_checkpoint::witness::{SIZE_CONTENT_TYPE, format_size_body};
use tokio::net::TcpListener;

use crate::error::{Error, Result, io};
use crate::witness::Witness;

/// `Content-Type` of cosignature lines and of error messages.
const TEXT: &str = "text/plain; charset=utf-8";

/// The witness's routes, limits included.
pub fn router(
    witness: Arc<Witness>,
    prefix: &str,
    max_body_bytes: usize,
    timeout: Duration,
) -> Router {
    Router::new()
        .route(&format!("{prefix}/add-checkpoint"), post(add_checkpoint))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .with_state(witness)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Answers are one small write; with Nagle's algorithm a client that waits for each answer pays a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io("serving HTTP"))
}

async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        // A request cut off here may still have been cosigned and stored: the blocking step runs to its end.
        // The client's retry then gets 409 with the new size, and resubmitting from it gets the cosignature.
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("request took longer than {limit:?}\n"),
        ),
    }
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match tokio::task::spawn_blocking(move || witness.add_checkpoint(&body)).await {
        Ok(Ok(lines)) => text(StatusCode::OK, lines),
        Ok(Err(e)) => refusal(e),
        Err(e) => {
            tracing::error!(error = %e, "add-checkpoint task failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n".into())
        }
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, TEXT)], body).into_response()
}

/// The answer tlog-witness defines for each refusal; anything else is the witness's own failure (500).
fn refusal(e: Error) -> Response {
    let status = match &e {
        Error::Malformed(_) | Error::OldSizeBeyond { .. } => StatusCode::BAD_REQUEST,
        Error::UnknownOrigin(_) => StatusCode::NOT_FOUND,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::WrongOldSize { latest, .. } => {
            return (
                StatusCode::CONFLICT,
                [(CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                format_size_body(*latest),
            )
                .into_response();
        }
        Error::BadProof(_) => StatusCode::UNPROCESSABLE_ENTITY,
        // A plain-text 409, not the size body: a client that resends from the size a 409 names would otherwise
        // resend this same checkpoint forever. It is a fork of what the witness cosigned.
        Error::RootConflict { .. } => StatusCode::CONFLICT,
        _ => {
            tracing::error!(error = %e, "add-checkpoint failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    text(status, format!("{e}\n"))
}
