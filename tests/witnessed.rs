//! Issue 17 end to end: `tlogd` with three of our witnesses (`tlog-witness`, quorum 2) and its C2SP tlog-tiles
//! listener, read and checked by the tile client, by cloudflare/azul's `tlog_tiles` and `signed_note` as
//! independent references, and by `tlog` (the process is the point for the fork report). The log and the
//! witnesses run in-process on port 0; everything between them is real HTTP and gRPC.

#[path = "azul.rs"]
#[allow(dead_code)]
mod azul;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tlog_checkpoint::witness::{AddCheckpoint, CosignerKey};
use tlog_checkpoint::{SignedCheckpoint, SignerKey};
use tlog_client::WitnessPolicy;
use tlog_client::http::{HttpTiles, http_client};
use tlog_client::tiles::TileClient;
use tlog_core::testing::Tree;
use tlog_core::tiles::Tile;
use tlog_core::{LeafIndex, NodeId, TreeSize, leaf_hash};
use tlog_proto::v1;
use tlog_server::server::ServerConfig;
use tlog_server::testing::Running;
use tlog_server::witnessing::{WitnessEndpoint, WitnessingConfig};
use tlog_suite::{Rpc, bin, event};
use tlog_witness::{LogConfig, Witness, WitnessConfig};

const ORIGIN: &str = "example.com/witnessed";

fn log_key() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [21; 32]).unwrap()
}

/// Writes the log's key file (mode 0600) so the witnesses can be told its verifier key before the log starts.
fn write_key(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("log.key");
    std::fs::write(&path, log_key().to_private_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `n` witnesses of this log, each in its own folder under `dir`.
async fn witnesses(dir: &Path, n: u8) -> Vec<tlog_witness::Running> {
    let mut out = Vec::new();
    for i in 1..=n {
        let config = WitnessConfig {
            data_dir: dir.join(format!("witness{i}")),
            name: Some(format!("witness{i}.example")),
            logs: vec![LogConfig::from_key(log_key().verifier())],
            listen: "127.0.0.1:0".parse().unwrap(),
            ..WitnessConfig::default()
        };
        out.push(Witness::start(config).await.unwrap());
    }
    out
}

fn cosigners(ws: &[tlog_witness::Running]) -> Vec<CosignerKey> {
    ws.iter().map(|w| w.started.cosigner_key.clone()).collect()
}

fn witnessing(ws: &[tlog_witness::Running], quorum: usize) -> WitnessingConfig {
    let endpoints = ws
        .iter()
        .map(|w| WitnessEndpoint {
            key: w.started.cosigner_key.clone(),
            url: w.url.trim_end_matches("/add-checkpoint").to_owned(),
        })
        .collect();
    let mut c = WitnessingConfig::new(endpoints, quorum);
    c.min_backoff = Duration::from_millis(50);
    c.max_backoff = Duration::from_millis(500);
    c
}

async fn start_log(data: &Path, witnessing: WitnessingConfig) -> Running {
    let config = ServerConfig {
        data_dir: data.to_path_buf(),
        key_file: Some(write_key(data)),
        witnessing: Some(witnessing),
        ..ServerConfig::default()
    };
    Running::start(config).await
}

/// Submits `entries` in batches of uneven sizes (from `seed`) and returns every size the log published.
async fn submit_uneven(rpc: &mut Rpc, entries: std::ops::Range<u64>, seed: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut x = seed | 1;
    let mut at = entries.start;
    while at < entries.end {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (1 + x % 3000).min(entries.end - at);
        let batch = v1::SubmitBatchRequest {
            entries: (at..at + n).map(event).collect(),
            client_tag: 0,
            shared_checkpoint: false,
            multiproof: false,
        };
        let receipts = rpc.submit_batch(batch).await.unwrap().into_inner().receipts;
        let size = receipts.last().unwrap().checkpoint.as_ref().unwrap().size;
        sizes.push(size);
        at += n;
    }
    sizes
}

/// The tile client over `url`, requiring `quorum` of `witnesses`.
fn tile_client(url: &str, witnesses: Vec<CosignerKey>, quorum: usize) -> TileClient<HttpTiles> {
    let http = http_client(Duration::from_secs(10)).unwrap();
    let policy = WitnessPolicy::new(witnesses, Some(quorum)).unwrap();
    TileClient::new(HttpTiles::new(http, url).unwrap(), log_key().verifier()).with_policy(policy)
}

/// Polls the tile client's checkpoint until it is witnessed at `size` (10 s at most).
async fn witnessed_at(tiles: &TileClient<HttpTiles>, size: u64) -> SignedCheckpoint {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cp = tiles.checkpoint().await;
        if let Ok(cp) = &cp
            && cp.checkpoint.size.0 == size
        {
            return cp.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no witnessed checkpoint of size {size}: {cp:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads a tile's bytes from the log's HTTP listener.
async fn tile_bytes(http: &reqwest::Client, url: &str, tile: &Tile) -> Vec<u8> {
    let response = http
        .get(format!("{url}/{}", tile.path()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", tile.path());
    response.bytes().await.unwrap().to_vec()
}

/// azul's `tlog_tiles::TileReader` over our HTTP tiles (its `Tile::path` is sumdb's, `tile/8/L/N`; the C2SP path
/// drops the height, so the path is written from its coordinates).
struct AzulTiles {
    url: String,
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
}

impl tlog_tiles::TileReader for AzulTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let ours = Tile {
                    kind: tlog_core::tiles::TileKind::Hashes(t.level()),
                    index: t.level_index(),
                    width: t.width() as u16,
                };
                let (http, url) = (self.http.clone(), self.url.clone());
                let body = std::thread::scope(|s| {
                    s.spawn(|| self.runtime.block_on(tile_bytes(&http, &url, &ours)))
                        .join()
                        .unwrap()
                });
                Ok(body)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[tlog_tiles::Tile], _data: &[Vec<u8>]) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witnessed_log_is_read_and_verified_from_tiles_alone() {
    const ENTRIES: u64 = 200_000;
    let dir = TempDir::new().unwrap();
    let ws = witnesses(dir.path(), 3).await;
    let server = start_log(&dir.path().join("log"), witnessing(&ws, 2)).await;
    let mut rpc = Rpc::connect(server.url()).await.unwrap();
    let published = submit_uneven(&mut rpc, 0..ENTRIES, 17).await;
    assert_eq!(*published.last().unwrap(), ENTRIES);

    // The witnessed checkpoint, from tiles alone. The log publishes it once 2 of the 3 witnesses cosigned and adds
    // the third's cosignature when it comes: waiting for all three makes every read below see the same note
    // (each is still checked under the quorum of 2).
    let url = server.http_url();
    let witnessed = witnessed_at(&tile_client(&url, cosigners(&ws), 3), ENTRIES).await;
    let tiles = tile_client(&url, cosigners(&ws), 2);
    assert_eq!(tiles.checkpoint().await.unwrap().note, witnessed.note);
    // The same one over gRPC.
    let grpc = rpc
        .get_checkpoint(v1::GetCheckpointRequest {
            witnessed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    tlog_checkpoint::witness::verify_witnessed(
        &log_key().verifier(),
        &cosigners(&ws),
        2,
        &grpc.note,
    )
    .unwrap();
    // The gRPC client under the same policy reads the witnessed checkpoint and proves against it.
    let policy = WitnessPolicy::new(cosigners(&ws), Some(2)).unwrap();
    let mut client = tlog_client::LogClient::connect(&server.url(), log_key().verifier())
        .await
        .unwrap()
        .with_policy(policy);
    assert_eq!(client.checkpoint().await.unwrap().note, witnessed.note);
    let receipt = client
        .inclusion_by_index(LeafIndex(12_345), None)
        .await
        .unwrap();
    assert_eq!(receipt.receipt().checkpoint, witnessed.note);
    client
        .consistency_from_size(TreeSize(published[3]), None)
        .await
        .unwrap();
    // And by the independent reference: every line (log, its timestamp, the witnesses that answered) verifies.
    let lines = tlog_checkpoint::Note::parse(witnessed.note.as_bytes()).unwrap();
    let cosigned: Vec<CosignerKey> = cosigners(&ws)
        .into_iter()
        .filter(|k| lines.signatures.iter().any(|s| s.name == k.name()))
        .collect();
    assert!(cosigned.len() >= 2);
    let azul_cp = azul::azul_verify(&log_key(), &cosigned, witnessed.note.as_bytes());
    assert_eq!(azul_cp.size(), ENTRIES);

    // Tiles hold exactly the node hashes the core computes, full and partial, at published sizes on and off
    // multiples of 256 (the tree's own partial tiles included).
    let tree = Tree::new((0..ENTRIES).map(|i| leaf_hash(&event(i))).collect());
    assert_eq!(witnessed.checkpoint.root, tree.root(ENTRIES));
    let http = http_client(Duration::from_secs(10)).unwrap();
    let mut sizes: Vec<u64> = published.iter().step_by(7).copied().collect();
    sizes.extend([256 * 300, ENTRIES]);
    sizes.retain(|s| published.contains(s) || *s == ENTRIES);
    for &size in &sizes {
        for level in 0..3u8 {
            let last = (size >> (8 * u32::from(level))) / 256;
            for index in [0, last / 2, last.saturating_sub(1), last] {
                let Some(tile) = Tile::hashes_at(level, index, TreeSize(size)) else {
                    continue;
                };
                // A partial tile of a size the log published, or a full one.
                let body = tile_bytes(&http, &url, &tile).await;
                let ids: Vec<NodeId> = (0..u64::from(tile.width))
                    .map(|i| NodeId::new(8 * level, index * 256 + i))
                    .collect();
                let want: Vec<u8> = tree.hashes(&ids).iter().flat_map(|h| h.0).collect();
                assert_eq!(body, want, "{} at size {size}", tile.path());
            }
        }
    }

    // Roots of sampled published sizes rebuilt from tiles; inclusion and consistency proofs built from tiles and
    // verified against the witnessed checkpoint; entries from bundles.
    for &size in sizes.iter().filter(|&&s| published.contains(&s)) {
        let root = tiles.root_at(TreeSize(size), &witnessed).await.unwrap();
        assert_eq!(root, tree.root(size), "root at {size}");
        let old = tlog_suite::checkpoint_at(&mut rpc, size).await;
        let old = tlog_checkpoint::verify_checkpoint(&log_key().verifier(), &old.note).unwrap();
        if size < ENTRIES {
            tiles.prove_consistency(&old, &witnessed).await.unwrap();
        }
    }
    for index in [0, 1, 255, 256, 65_535, 65_536, 123_457, ENTRIES - 1] {
        let receipt = tiles
            .prove_inclusion(LeafIndex(index), &witnessed)
            .await
            .unwrap();
        assert_eq!(receipt.receipt().leaf_hash, leaf_hash(&event(index)));
    }
    let entries = tiles
        .entries(LeafIndex(65_000), LeafIndex(66_000), &witnessed)
        .await
        .unwrap();
    assert_eq!(entries, (65_000..66_000).map(event).collect::<Vec<_>>());

    // azul's sumdb-style tile reader over the same tiles: tree hash, record and tree proofs.
    let reader = AzulTiles {
        url: url.clone(),
        runtime: tokio::runtime::Handle::current(),
        http: http.clone(),
    };
    let azul_root = tlog_tiles::Hash(witnessed.checkpoint.root.0);
    let azul_check = tokio::task::spawn_blocking(move || {
        let thr = tlog_tiles::TileHashReader::new(ENTRIES, azul_root, &reader);
        assert_eq!(tlog_tiles::tree_hash(ENTRIES, &thr).unwrap(), azul_root);
        for n in [0, 255, 256, 70_000, ENTRIES - 1] {
            let proof = tlog_tiles::prove_record(ENTRIES, n, &thr).unwrap();
            let leaf = tlog_tiles::record_hash(&event(n));
            tlog_tiles::check_record(&proof, ENTRIES, azul_root, n, leaf).unwrap();
        }
        for old in [1, 256, 70_000, 199_999] {
            let proof = tlog_tiles::prove_tree(ENTRIES, old, &thr).unwrap();
            let old_root = tlog_tiles::tree_hash(old, &thr).unwrap();
            tlog_tiles::check_tree(&proof, ENTRIES, azul_root, old, old_root).unwrap();
        }
    });
    azul_check.await.unwrap();

    drop(rpc);
    server.stop().await.unwrap();
    for w in ws {
        w.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_is_refused_by_every_witness_and_reported_by_the_monitor() {
    let dir = TempDir::new().unwrap();
    let ws = witnesses(dir.path(), 3).await;
    let keys = cosigners(&ws);
    let state = dir.path().join("monitor.state");
    let vkey = log_key().verifier().to_string();
    let witness_flags: Vec<String> = keys
        .iter()
        .flat_map(|k| ["--witness".to_string(), k.to_string()])
        .collect();
    let monitor = |url: &str, policy: &[String]| {
        Command::new(bin("tlog"))
            .args(["--key", &vkey, "monitor", "--tiles", url])
            .arg("--state")
            .arg(&state)
            .arg("--once")
            .args(policy)
            .output()
            .unwrap()
    };
    let mut quorum = witness_flags.clone();
    quorum.extend(["--quorum".to_string(), "2".to_string()]);

    // The first history: 1,000 entries, witnessed, and a monitor that trusts it.
    let first = start_log(&dir.path().join("first"), witnessing(&ws, 2)).await;
    let mut rpc = Rpc::connect(first.url()).await.unwrap();
    submit_uneven(&mut rpc, 0..1000, 3).await;
    let tiles = tile_client(&first.http_url(), keys.clone(), 3);
    witnessed_at(&tiles, 1000).await;
    let out = monitor(&first.http_url(), &quorum);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(rpc);
    first.stop().await.unwrap();

    // A second tlogd with the same key and origin signs other entries at the same size.
    let second = start_log(&dir.path().join("second"), witnessing(&ws, 1)).await;
    let mut rpc = Rpc::connect(second.url()).await.unwrap();
    let batch = v1::SubmitBatchRequest {
        entries: (0..1000)
            .map(|i| format!("forged {i}").into_bytes())
            .collect(),
        client_tag: 0,
        shared_checkpoint: false,
        multiproof: false,
    };
    let receipts = rpc.submit_batch(batch).await.unwrap().into_inner().receipts;
    let forged = receipts.last().unwrap().checkpoint.clone().unwrap();
    assert_eq!(forged.size, 1000);

    // Every witness has cosigned the first history at 1,000 and answers the forged checkpoint with 409.
    let http = http_client(Duration::from_secs(5)).unwrap();
    for w in &ws {
        let body = AddCheckpoint {
            old_size: 1000,
            proof: Vec::new(),
            checkpoint: forged.note.clone(),
        };
        let answer = http.post(&w.url).body(body.encode()).send().await.unwrap();
        assert_eq!(answer.status(), 409, "{}", w.started.cosigner_key.name());
    }
    // Nor does the second log ever get a witnessed checkpoint from them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let witnessed = rpc
        .get_checkpoint(v1::GetCheckpointRequest {
            witnessed: true,
            ..Default::default()
        })
        .await;
    assert_eq!(
        witnessed.unwrap_err().code(),
        tonic::Code::Unavailable,
        "the forked log was witnessed"
    );

    // The monitor, following the forked log from its tiles, refuses its unwitnessed checkpoint (exit 3); and
    // asked to trust the log's signature alone, it reports the fork itself (exit 3), naming both roots.
    let out = monitor(&second.http_url(), &quorum);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));
    let out = monitor(&second.http_url(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.to_lowercase().contains("fork"), "{stderr}");
    drop(rpc);
    second.stop().await.unwrap();
    for w in ws {
        w.stop().await.unwrap();
    }
}
