//! tlogd's C2SP `tlog-tiles` HTTP listener: a server in this process (port 0, RocksDB in a temporary folder),
//! filled over gRPC in uneven batches and read over HTTP with the tile client's HTTP client. Expected tile bytes
//! come from a naive tree built here (hash every entry, fold rows pairwise), not from the server's code.

use std::io::Read;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use tlog_checkpoint::{VerifierKey, verify_checkpoint};
use tlog_core::testing::tiles::NON_CANONICAL_TILE_PATHS;
use tlog_core::tiles::{TILE_WIDTH, Tile, TileKind, encode_bundle};
use tlog_core::{Hash, TreeSize, leaf_hash, node_hash};
use tlog_proto::v1::GetCheckpointRequest;
use tlog_server::server::ServerConfig;
use tlog_server::testing::{self, Rpc, Running};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Batch sizes, cycled, to grow a log unevenly across tile boundaries.
const UNEVEN: [u64; 6] = [4096, 1, 255, 3001, 17, 4095];

/// A log served in-process over gRPC and HTTP, with what was submitted to it.
struct Log {
    server: Running,
    rpc: Rpc,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    entries: Vec<Vec<u8>>,
    /// Every tree size the log published, ascending.
    published: Vec<u64>,
}

impl Log {
    async fn start() -> Log {
        Self::start_with(|_| ()).await
    }

    /// Starts a log on the default configuration as `adjust` changes it.
    async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Log {
        let (server, dir) = Running::start_temporary("example.com/tiles", adjust).await;
        let rpc = server.rpc().await;
        let http = tlog_client::http::http_client(Duration::from_secs(60)).unwrap();
        Log {
            server,
            rpc,
            http,
            dir,
            entries: Vec::new(),
            published: Vec::new(),
        }
    }

    /// Grows the log to `size` entries in batches of the sizes [`UNEVEN`] cycles through, each its own checkpoint.
    async fn grow_to(&mut self, size: u64) {
        let mut batches = UNEVEN.iter().cycle();
        while (self.entries.len() as u64) < size {
            let start = self.entries.len() as u64;
            let n = (*batches.next().unwrap()).min(size - start);
            let entries: Vec<Vec<u8>> = (start..start + n)
                .map(|i| format!("{{\"event\":{i}}}").into_bytes())
                .collect();
            testing::submit_batch(&mut self.rpc, entries.clone()).await;
            self.entries.extend(entries);
            self.published.push(self.entries.len() as u64);
        }
        assert_eq!(self.latest_size().await, size);
    }

    async fn latest_size(&mut self) -> u64 {
        testing::tree_size(&mut self.rpc).await
    }

    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.server.http_url())
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// The body of `path`, which must be served (200).
    async fn body(&self, path: &str) -> Vec<u8> {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.bytes().await.unwrap().to_vec()
    }

    fn vkey(&self) -> VerifierKey {
        let text = std::fs::read_to_string(self.dir.path().join("log.vkey")).unwrap();
        VerifierKey::parse(text.trim()).unwrap()
    }

    async fn stop(self) {
        drop(self.rpc);
        drop(self.http);
        self.server.stop().await.unwrap();
    }
}

/// A log grown to 70,000 entries in uneven batches, with published sizes 1, 255, 256 and 257 among them.
async fn log_of_70000() -> Log {
    let mut log = Log::start().await;
    for size in [1, 255, 256, 257, 70_000] {
        log.grow_to(size).await;
    }
    log
}

/// Row `k` of the tree over `entries`: the hashes of its complete nodes of level `k`, left to right.
fn rows(entries: &[Vec<u8>]) -> Vec<Vec<Hash>> {
    let mut rows = vec![entries.iter().map(|e| leaf_hash(e)).collect::<Vec<Hash>>()];
    while rows.last().unwrap().len() > 1 {
        let next = rows
            .last()
            .unwrap()
            .chunks_exact(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
        rows.push(next);
    }
    rows
}

/// The bytes a hash tile must hold: hashes `256N .. 256N + W` of tree level `8L`.
fn expected_tile(rows: &[Vec<Hash>], tile: &Tile) -> Vec<u8> {
    let TileKind::Hashes(level) = tile.kind else {
        panic!("not a hash tile: {tile:?}")
    };
    let start = (tile.index * TILE_WIDTH) as usize;
    rows[usize::from(level) * 8][start..start + usize::from(tile.width)]
        .iter()
        .flat_map(|h| h.as_bytes().to_vec())
        .collect()
}

/// Every hash tile of a tree of `size`, full and partial, level by level.
fn hash_tiles(size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for level in 0..=63u8 {
        let mut index = 0;
        while let Some(tile) = Tile::hashes_at(level, index, TreeSize(size)) {
            tiles.push(tile);
            index += 1;
        }
        if index == 0 {
            break;
        }
    }
    tiles
}

/// The rightmost tile of every level of a tree of `size`: where trees of different sizes differ.
fn edge_tiles(size: u64) -> Vec<Tile> {
    let mut last = std::collections::BTreeMap::new();
    for tile in hash_tiles(size) {
        last.insert(tile.kind, tile);
    }
    last.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tile_at_sizes_on_and_off_tile_boundaries_equals_the_core_hashes() {
    let mut log = Log::start().await;
    for size in [1, 255, 256, 257, 70_000] {
        log.grow_to(size).await;
        let rows = rows(&log.entries);
        for tile in hash_tiles(size) {
            let body = log.body(&tile.path()).await;
            assert_eq!(
                body,
                expected_tile(&rows, &tile),
                "{} at size {size}",
                tile.path()
            );
        }
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_tiles_of_every_published_size_stay_servable_after_growth() {
    let log = log_of_70000().await;
    let rows = rows(&log.entries);
    let mut checked = 0;
    for &size in &log.published {
        for tile in edge_tiles(size).into_iter().filter(|t| !t.is_full()) {
            let body = log.body(&tile.path()).await;
            assert_eq!(
                body,
                expected_tile(&rows, &tile),
                "{} of size {size}",
                tile.path()
            );
            checked += 1;
        }
    }
    assert!(checked > log.published.len(), "{checked} partial tiles");
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_bundles_hold_the_entries_that_hash_to_the_level_0_tile() {
    let log = log_of_70000().await;
    let mut bundles: Vec<Tile> = (0..)
        .map_while(|index| Tile::entries_at(index, TreeSize(log.size())))
        .collect();
    // And the partial bundle of every earlier published size.
    bundles.extend(
        log.published
            .iter()
            .filter_map(|&size| Tile::entries_at((size - 1) / TILE_WIDTH, TreeSize(size)))
            .filter(|t| !t.is_full()),
    );
    for bundle in bundles {
        // The client decodes the gzip encoding.
        let body = log.body(&bundle.path()).await;
        let entries = bundle.parse_entries(&body).unwrap();
        let start = (bundle.index * TILE_WIDTH) as usize;
        assert_eq!(
            entries,
            log.entries[start..start + entries.len()]
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>(),
            "{}",
            bundle.path()
        );
        let level_0 = Tile {
            kind: TileKind::Hashes(0),
            ..bundle
        };
        let hashes = level_0
            .parse_hashes(&log.body(&level_0.path()).await)
            .unwrap();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        assert_eq!(leaves, hashes, "{}", bundle.path());
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_tile_paths_get_400_naming_the_rule() {
    let mut log = Log::start().await;
    log.grow_to(300).await;
    // Every spelling the spec does not allow under /tile/, and one that is canonical only once percent-decoded.
    let under_tile = NON_CANONICAL_TILE_PATHS
        .iter()
        .filter(|p| p.starts_with("tile/"));
    for &path in under_tile.chain(&["tile/0/%30%30%30"]) {
        let response = log.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let message = response.text().await.unwrap();
        assert!(message.contains("bad tile path"), "{path}: {message}");
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_no_signed_checkpoint_covers_get_404() {
    let mut log = Log::start().await;
    // Before any entry: nothing at all.
    assert_eq!(
        log.get("tile/0/000.p/1").await.status(),
        StatusCode::NOT_FOUND
    );
    log.grow_to(257).await;
    for path in [
        // Beyond the tree.
        "tile/0/002",
        "tile/0/001",
        "tile/entries/001",
        "tile/1/000",
        "tile/2/000.p/1",
        "tile/0/x001/000",
        // Widths the tree never had: tile 0/1 holds one hash, tile 1/0 one.
        "tile/0/001.p/2",
        "tile/1/000.p/2",
        "tile/entries/001.p/2",
    ] {
        assert_eq!(
            log.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // The widths it has are served.
    for path in ["tile/0/000", "tile/0/001.p/1", "tile/1/000.p/1"] {
        assert_eq!(log.get(path).await.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(log.get("tiles").await.status(), StatusCode::NOT_FOUND);
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_if_none_match_gets_304() {
    let mut log = Log::start().await;
    log.grow_to(300).await;
    for path in ["tile/0/000", "tile/0/001.p/44", "tile/entries/001.p/44"] {
        let first = log.get(path).await;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let etag = first.headers()[ETAG].clone();
        assert!(
            etag.to_str().unwrap().starts_with('"'),
            "{path}: strong tag {etag:?}"
        );
        let again = log
            .http
            .get(log.url(path))
            .header(IF_NONE_MATCH, etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[ETAG], etag, "{path}");
        assert_eq!(again.headers()[CACHE_CONTROL], IMMUTABLE, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
        let other = log
            .http
            .get(log.url(path))
            .header(IF_NONE_MATCH, "\"another\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
    // Different tiles have different tags.
    let tag = |path: &'static str| {
        let log = &log;
        async move { log.get(path).await.headers()[ETAG].clone() }
    };
    assert_ne!(tag("tile/0/000").await, tag("tile/0/001.p/44").await);
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_tiles_and_bundles_carry_their_content_type_and_caching() {
    let mut log = Log::start().await;
    log.grow_to(300).await;
    let checkpoint = log.get("checkpoint").await;
    assert_eq!(
        checkpoint.headers()[CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(checkpoint.headers()[CACHE_CONTROL], "max-age=2");
    for path in ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"] {
        let tile = log.get(path).await;
        assert_eq!(
            tile.headers()[CONTENT_TYPE],
            "application/octet-stream",
            "{path}"
        );
        assert_eq!(tile.headers()[CACHE_CONTROL], IMMUTABLE, "{path}");
        assert!(tile.headers().get(CONTENT_ENCODING).is_none(), "{path}");
    }
    // A client that does not decode: the bundle comes gzip-encoded without being asked for.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let bundle = raw
        .get(log.url("tile/entries/001.p/44"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    assert_eq!(bundle.headers()[CONTENT_TYPE], "application/octet-stream");
    assert_eq!(bundle.headers()[CACHE_CONTROL], IMMUTABLE);
    assert_eq!(bundle.headers()[CONTENT_ENCODING], "gzip");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&bundle.bytes().await.unwrap()[..])
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, encode_bundle(&log.entries[256..300]).unwrap());
    drop(raw);
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_is_the_latest_signed_note_and_verifies_with_the_log_key() {
    let mut log = Log::start().await;
    log.grow_to(300).await;
    let body = log.body("checkpoint").await;
    let signed = verify_checkpoint(&log.vkey(), &body).unwrap();
    assert_eq!(signed.checkpoint.size, TreeSize(300));
    assert_eq!(signed.checkpoint.root, rows_root(&log.entries));
    log.grow_to(301).await;
    let body = log.body("checkpoint").await;
    assert_eq!(
        verify_checkpoint(&log.vkey(), &body)
            .unwrap()
            .checkpoint
            .size,
        TreeSize(301)
    );
    log.stop().await;
}

/// The RFC 9162 root of `entries` (the recursive `MTH`), independent of the server's stored tiles.
fn rows_root(entries: &[Vec<u8>]) -> Hash {
    fn mth(leaves: &[Hash]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        // The largest power of two below the length.
        let split = 1 << (usize::BITS - 1 - (leaves.len() - 1).leading_zeros());
        node_hash(&mth(&leaves[..split]), &mth(&leaves[split..]))
    }
    mth(&entries.iter().map(|e| leaf_hash(e)).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_serves_beside_http() {
    let mut log = Log::start().await;
    log.grow_to(3).await;
    let grpc = log
        .rpc
        .get_checkpoint(GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grpc.size, 3);
    assert_eq!(log.body("checkpoint").await, grpc.note);
    assert_ne!(log.server.http_addr, Some(log.server.addr));
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_get_405() {
    let mut log = Log::start().await;
    log.grow_to(3).await;
    for path in ["checkpoint", "tile/0/000.p/3", "tile/entries/000.p/3"] {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let response = log
                .http
                .request(method.clone(), log.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_read_limit_wait_their_turn() {
    let mut log = Log::start_with(|c| c.http.max_concurrent_reads = 1).await;
    log.grow_to(70_000).await;
    let rows = rows(&log.entries);
    let mut fetches = tokio::task::JoinSet::new();
    for tile in hash_tiles(log.size()).into_iter().take(64) {
        let (http, url) = (log.http.clone(), log.url(&tile.path()));
        fetches.spawn(async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{}", tile.path());
            (tile, response.bytes().await.unwrap())
        });
    }
    let answered = tokio::time::timeout(Duration::from_secs(60), fetches.join_all())
        .await
        .expect("every request answered");
    assert_eq!(answered.len(), 64);
    for (tile, body) in answered {
        assert_eq!(body, expected_tile(&rows, &tile), "{}", tile.path());
    }
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_off_opens_no_listener_and_grpc_serves() {
    let mut log = Log::start_with(|c| c.http_listen = None).await;
    assert_eq!(log.server.http_addr, None);
    log.grow_to(3).await;
    log.stop().await;
}
