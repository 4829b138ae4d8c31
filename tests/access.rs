//! The access matrix of docs/private.md: every gRPC call and HTTP endpoint × {no token, write, read-private,
//! admin, wrong token} answers the documented code.

use std::time::Duration;

use tlog_proto::v1;
use tlog_server::server::ServerConfig;
use tlog_server::testing::Running;
use tlog_server::validate::Scope;
use tlog_suite::Rpc;
use tonic::Code;

const WRITE: &str = "w-token";
const READ: &str = "r-token";
const ADMIN: &str = "a-token";
const WRONG: &str = "not-a-token";

/// The callers of the matrix, in its column order.
const CALLERS: [Option<&str>; 5] = [None, Some(WRITE), Some(READ), Some(ADMIN), Some(WRONG)];

fn req<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    match token {
        Some(t) => tlog_suite::authed(t, message),
        None => tonic::Request::new(message),
    }
}

fn code<T>(r: Result<T, tonic::Status>) -> Code {
    match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

const PUBLIC: [Code; 5] = [Code::Ok; 5];
const WRITES: [Code; 5] = [
    Code::Unauthenticated,
    Code::Ok,
    Code::PermissionDenied,
    Code::PermissionDenied,
    Code::PermissionDenied,
];
const READ_PRIVATE: [Code; 5] = [
    Code::Unauthenticated,
    Code::PermissionDenied,
    Code::Ok,
    Code::PermissionDenied,
    Code::PermissionDenied,
];
const ADMIN_ONLY: [Code; 5] = [
    Code::Unauthenticated,
    Code::PermissionDenied,
    Code::PermissionDenied,
    Code::Ok,
    Code::PermissionDenied,
];

fn private(subject: &str) -> v1::SubmitPrivateRequest {
    v1::SubmitPrivateRequest {
        payloads: vec![v1::PrivatePayload {
            subject: subject.into(),
            payload: b"payload".to_vec(),
        }],
    }
}

async fn grpc_code(rpc: &mut Rpc, call: &str, token: Option<&str>, n: usize) -> Code {
    match call {
        "Submit" => code(
            rpc.submit(req(
                token,
                v1::SubmitRequest {
                    entry: format!("event {n}").into_bytes(),
                },
            ))
            .await,
        ),
        "SubmitBatch" => code(
            rpc.submit_batch(req(
                token,
                v1::SubmitBatchRequest {
                    entries: vec![format!("batch event {n}").into_bytes()],
                    client_tag: 0,
                    shared_checkpoint: false,
                    multiproof: false,
                },
            ))
            .await,
        ),
        "SubmitStream" => {
            let message = v1::SubmitBatchRequest {
                entries: vec![format!("stream event {n}").into_bytes()],
                client_tag: 0,
                shared_checkpoint: false,
                multiproof: false,
            };
            match rpc
                .submit_stream(req(token, tokio_stream::iter(vec![message])))
                .await
            {
                Ok(answers) => code(answers.into_inner().message().await),
                Err(s) => s.code(),
            }
        }
        "SubmitPrivate" => code(rpc.submit_private(req(token, private("subject-1"))).await),
        "GetCheckpoint" => code(
            rpc.get_checkpoint(req(token, v1::GetCheckpointRequest::default()))
                .await,
        ),
        "WatchCheckpoints" => match rpc
            .watch_checkpoints(req(token, v1::WatchCheckpointsRequest {}))
            .await
        {
            Ok(stream) => code(stream.into_inner().message().await),
            Err(s) => s.code(),
        },
        "GetInclusionProof" => code(
            rpc.get_inclusion_proof(req(
                token,
                v1::GetInclusionProofRequest {
                    leaf: Some(v1::get_inclusion_proof_request::Leaf::Index(0)),
                    tree_size: 0,
                },
            ))
            .await,
        ),
        "GetConsistencyProof" => code(
            rpc.get_consistency_proof(req(
                token,
                v1::GetConsistencyProofRequest {
                    old_size: 1,
                    new_size: 0,
                },
            ))
            .await,
        ),
        "GetEntries" => match rpc
            .get_entries(req(token, v1::GetEntriesRequest { start: 0, end: 1 }))
            .await
        {
            Ok(stream) => code(stream.into_inner().message().await),
            Err(s) => s.code(),
        },
        "GetPrivatePayload" => code(
            rpc.get_private_payload(req(token, v1::GetPrivatePayloadRequest { index: 0 }))
                .await,
        ),
        // A subject of its own per caller, so that the one allowed erasure does not make the next one a repeat.
        "EraseSubject" => code(
            rpc.erase_subject(req(
                token,
                v1::EraseSubjectRequest {
                    subject: format!("erasable-{n}"),
                },
            ))
            .await,
        ),
        other => panic!("no such call {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_answers_each_caller_with_the_documented_code() {
    let (log, _dir) = Running::start_temporary("example.com/access", |c: &mut ServerConfig| {
        c.scoped_tokens = vec![
            (vec![Scope::Write], WRITE.into()),
            (vec![Scope::ReadPrivate], READ.into()),
            (vec![Scope::Admin], ADMIN.into()),
        ];
    })
    .await;
    let mut rpc = Rpc::connect(log.url()).await.unwrap();
    // A private entry at index 0 for GetPrivatePayload and the proofs.
    rpc.submit_private(tlog_suite::authed(WRITE, private("subject-0")))
        .await
        .unwrap();
    // Subjects to erase, one per caller.
    for n in 0..CALLERS.len() {
        rpc.submit_private(tlog_suite::authed(WRITE, private(&format!("erasable-{n}"))))
            .await
            .unwrap();
    }

    let matrix: [(&str, [Code; 5]); 11] = [
        ("Submit", WRITES),
        ("SubmitBatch", WRITES),
        ("SubmitStream", WRITES),
        ("SubmitPrivate", WRITES),
        ("GetCheckpoint", PUBLIC),
        ("WatchCheckpoints", PUBLIC),
        ("GetInclusionProof", PUBLIC),
        ("GetConsistencyProof", PUBLIC),
        ("GetEntries", PUBLIC),
        ("GetPrivatePayload", READ_PRIVATE),
        ("EraseSubject", ADMIN_ONLY),
    ];
    let mut wrong = Vec::new();
    for (call, expected) in matrix {
        for (n, (token, want)) in CALLERS.iter().zip(expected).enumerate() {
            let got = grpc_code(&mut rpc, call, *token, n).await;
            if got != want {
                wrong.push(format!(
                    "{call} with {token:?}: {got:?}, documented {want:?}"
                ));
            }
        }
    }

    // HTTP: ingestion takes the write scope; tiles, checkpoint and metrics are public.
    let http = tlog_client::http::http_client(Duration::from_secs(10)).unwrap();
    let base = log.http_url();
    let http_matrix: [(&str, bool, [u16; 5]); 4] = [
        ("/v1/events", true, [401, 200, 403, 403, 403]),
        ("/checkpoint", false, [200; 5]),
        ("/tile/0/000.p/6", false, [200; 5]),
        ("/metrics", false, [200; 5]),
    ];
    for (path, post, expected) in http_matrix {
        for (n, (token, want)) in CALLERS.iter().zip(expected).enumerate() {
            let url = format!("{base}{path}");
            let mut request = if post {
                http.post(url)
                    .header("content-type", "application/json")
                    .body(format!("{{\"actor\":\"a\",\"action\":\"x\",\"n\":{n}}}"))
            } else {
                http.get(url)
            };
            if let Some(t) = token {
                request = request.bearer_auth(t);
            }
            let got = request.send().await.unwrap().status().as_u16();
            if got != want {
                wrong.push(format!("{path} with {token:?}: {got}, documented {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    drop(rpc);
    log.stop().await.unwrap();
}
