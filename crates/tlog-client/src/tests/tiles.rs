//! The tile client against tiles written from a naive reference: level-8L rows hashed pairwise from the leaves
//! (RFC 9162 §2.1.1 on perfect subtrees), cut into C2SP tiles by hand, proofs compared with the RFC recursion.

use std::sync::Arc;

use tlog_checkpoint::witness::add_cosignatures;
use tlog_checkpoint::{CosignerKey, SignedCheckpoint, SignerKey, cosign};
use tlog_core::testing::tiles::tree_tiles;
use tlog_core::tiles::{TileError, encode_bundle};
use tlog_core::{CompactRange, Hash, LeafIndex, TreeSize, leaf_hash};

use super::*;
use crate::{ClientError, MemoryTiles, TileClient, TrustedLog, WitnessPolicy};

/// Publishes the tiles and bundles of the tree of the first `size` entries, and its checkpoint.
fn publish(source: &MemoryTiles, entries: &[Vec<u8>], size: usize) -> SignedCheckpoint {
    for (path, body) in tree_tiles(&entries[..size]) {
        source.insert(path, body);
    }
    let signed = checkpoint(&leaves(&entries[..size]), size, 1_700_000_000 + size as u64);
    source.set_checkpoint(signed.note.clone());
    signed
}

fn log(size: usize) -> (Arc<MemoryTiles>, Vec<Vec<u8>>, SignedCheckpoint) {
    let entries = entries(size as u64);
    let source = Arc::new(MemoryTiles::new());
    let signed = publish(&source, &entries, size);
    (source, entries, signed)
}

fn client(source: &Arc<MemoryTiles>) -> TileClient<Arc<MemoryTiles>> {
    TileClient::new(source.clone(), verifier())
}

/// A client of a published log of `size` entries, with the log's leaves (what its answers are checked against)
/// and checkpoint.
fn reference_log(size: usize) -> (TileClient<Arc<MemoryTiles>>, Vec<Hash>, SignedCheckpoint) {
    let (source, entries, signed) = log(size);
    (client(&source), leaves(&entries), signed)
}

const SIZES: [usize; 8] = [1, 2, 255, 256, 257, 513, 65_536, 70_000];

#[tokio::test]
async fn inclusion_proofs_from_tiles_are_the_rfc_proofs() {
    for size in SIZES {
        let (client, l, signed) = reference_log(size);
        for index in [0, size / 3, size / 2, size - 1] {
            let got = client
                .prove_inclusion(LeafIndex(index as u64), &signed)
                .await;
            let got = got.unwrap_or_else(|e| panic!("size {size} index {index}: {e}"));
            assert_eq!(got.leaf_hash(), l[index]);
            assert_eq!(
                got.receipt().inclusion_proof,
                inclusion_proof(index, &l),
                "size {size} index {index}"
            );
        }
    }
}

#[tokio::test]
async fn consistency_proofs_from_tiles_are_the_rfc_proofs() {
    let (client, l, _) = reference_log(70_000);
    for (old, new) in [
        (1, 70_000),
        (255, 256),
        (256, 70_000),
        (257, 65_536),
        (1000, 1000),
        (65_535, 69_999),
    ] {
        let proof = client
            .consistency_proof(TreeSize(old), TreeSize(new), TreeSize(70_000))
            .await
            .unwrap();
        assert_eq!(
            proof,
            consistency_proof(old as usize, &l[..new as usize]),
            "{old} -> {new}"
        );
    }
}

#[tokio::test]
async fn roots_rebuilt_from_tiles_are_the_tree_roots() {
    let (client, l, signed) = reference_log(70_000);
    for size in [0, 1, 255, 256, 257, 65_536, 69_999, 70_000] {
        let root = client.root_at(TreeSize(size), &signed).await.unwrap();
        assert_eq!(root, mth(&l[..size as usize]), "size {size}");
    }
}

#[tokio::test]
async fn entries_round_trip_from_bundles() {
    let (source, entries, signed) = log(1_000);
    let client = client(&source);
    for (start, end) in [(0, 1_000), (255, 257), (999, 1_000), (10, 10), (300, 700)] {
        let got = client
            .entries(LeafIndex(start), LeafIndex(end), &signed)
            .await
            .unwrap();
        assert_eq!(
            got,
            entries[start as usize..end as usize],
            "[{start}, {end})"
        );
    }
}

#[tokio::test]
async fn audit_rebuilds_the_root_from_bundles() {
    let (source, entries, signed) = log(70_000);
    let client = client(&source);
    let mut frontier = CompactRange::new();
    frontier
        .extend(leaves(&entries[..1_000]), |_, _| {})
        .unwrap();
    let tree = client
        .audit_entries(&frontier, &signed.checkpoint)
        .await
        .unwrap();
    assert_eq!(tree.root(), signed.checkpoint.root);
    assert_eq!(tree.size(), TreeSize(70_000));
}

/// The source at `path` replaced by `body`.
fn tamper(source: &MemoryTiles, path: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut body = source.remove(path).expect("tile exists");
    edit(&mut body);
    source.insert(path, body);
}

#[tokio::test]
async fn a_changed_hash_tile_fails_the_proof() {
    let (source, _, signed) = log(1_000);
    tamper(&source, "tile/0/001", |b| b[40] ^= 1);
    let err = client(&source)
        .prove_inclusion(LeafIndex(300), &signed)
        .await
        .unwrap_err();
    assert_proof_invalid(&err);
}

#[tokio::test]
async fn short_and_long_tiles_are_refused_with_their_path() {
    for (edit, actual) in [(-1i64, 8191usize), (32, 8224)] {
        let (source, _, signed) = log(1_000);
        tamper(&source, "tile/0/001", |b| {
            if edit < 0 {
                b.pop();
            } else {
                b.extend_from_slice(&[0; 32]);
            }
        });
        let err = client(&source)
            .prove_inclusion(LeafIndex(300), &signed)
            .await
            .unwrap_err();
        match err {
            ClientError::BadTile {
                path,
                source:
                    TileError::BadTileLength {
                        expected,
                        actual: got,
                    },
            } => {
                assert_eq!((path.as_str(), expected, got), ("tile/0/001", 8192, actual));
            }
            other => panic!("{other}"),
        }
    }
}

#[tokio::test]
async fn a_changed_entry_is_refused_against_its_tile() {
    let (source, _, signed) = log(1_000);
    let bundle = "tile/entries/001";
    let mut entries: Vec<Vec<u8>> = entries(1_000)[256..512].to_vec();
    entries[3] = b"forged".to_vec();
    source.insert(bundle, encode_bundle(&entries).unwrap());
    let err = client(&source)
        .entries(LeafIndex(256), LeafIndex(300), &signed)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::EntryMismatch { index: 259, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn bundles_of_the_wrong_width_are_refused() {
    let (source, entries, signed) = log(1_000);
    let short = encode_bundle(&entries[256..511]).unwrap();
    source.insert("tile/entries/001", short);
    let err = client(&source)
        .entries(LeafIndex(256), LeafIndex(300), &signed)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::BadTile { path, source: TileError::BadBundle(_) } if path == "tile/entries/001"),
        "{err}"
    );
    tamper(&source, "tile/entries/001", |b| b.truncate(b.len() - 1));
    assert!(matches!(
        client(&source)
            .audit_entries(&CompactRange::new(), &signed.checkpoint)
            .await,
        Err(ClientError::BadTile { .. })
    ));
}

#[tokio::test]
async fn a_lying_level_0_tile_cannot_vouch_for_entries() {
    // Tile and bundle changed together: the entry matches the tile, but the tile no longer proves into the root.
    let (source, mut entries, signed) = log(1_000);
    entries[259] = b"forged".to_vec();
    tamper(&source, "tile/0/001", |b| {
        b[3 * 32..4 * 32].copy_from_slice(&leaf_hash(b"forged").0);
    });
    source.insert(
        "tile/entries/001",
        encode_bundle(&entries[256..512]).unwrap(),
    );
    let err = client(&source)
        .entries(LeafIndex(256), LeafIndex(300), &signed)
        .await
        .unwrap_err();
    assert_proof_invalid(&err);
}

#[tokio::test]
async fn a_partial_tile_no_longer_served_is_cut_from_the_full_one() {
    let entries = entries(600);
    let source = Arc::new(MemoryTiles::new());
    let old = publish(&source, &entries, 300);
    publish(&source, &entries, 600);
    assert!(source.remove("tile/0/001.p/44").is_some());
    let got = client(&source)
        .prove_inclusion(LeafIndex(299), &old)
        .await
        .unwrap();
    assert_eq!(
        got.receipt().inclusion_proof,
        inclusion_proof(299, &leaves(&entries[..300]))
    );
}

#[tokio::test]
async fn full_tiles_are_cached() {
    let (source, _, signed) = log(70_000);
    let client = client(&source);
    client.prove_inclusion(LeafIndex(5), &signed).await.unwrap();
    let first = source.fetches();
    client.prove_inclusion(LeafIndex(6), &signed).await.unwrap();
    // Both proofs read tile/0/000 and tile/1/000 (full, cached) and tile/1/001.p/17 and tile/0/273.p/112
    // (partial: a later tree has other ones, so they are fetched again).
    assert_eq!(first, 4);
    assert_eq!(source.fetches() - first, 2);
}

#[tokio::test]
async fn trust_advances_on_tile_built_consistency_proofs() {
    let entries = entries(70_000);
    let source = Arc::new(MemoryTiles::new());
    let client = client(&source);
    let mut trusted = TrustedLog::new(verifier());
    for size in [300, 301, 1_000, 65_536, 70_000] {
        publish(&source, &entries, size);
        let latest = client.checkpoint().await.unwrap();
        client.advance(&mut trusted, latest).await.unwrap();
        assert_eq!(trusted.size(), TreeSize(size as u64));
    }
}

#[tokio::test]
async fn a_fork_is_proven_from_the_forked_tiles() {
    let entries = entries(1_000);
    let source = Arc::new(MemoryTiles::new());
    let client = client(&source);
    let old = publish(&source, &entries, 500);
    let mut trusted = TrustedLog::with_checkpoint(verifier(), &old.note).unwrap();
    // Same key, same origin, entry 10 rewritten.
    let mut forked = entries.clone();
    forked[10] = b"rewritten".to_vec();
    let fork_source = Arc::new(MemoryTiles::new());
    let new = publish(&fork_source, &forked, 1_000);
    let err = TileClient::new(fork_source.clone(), verifier())
        .advance(&mut trusted, new)
        .await
        .unwrap_err();
    match err {
        ClientError::Fork {
            size,
            trusted_root,
            new_root,
        } => {
            assert_eq!(size, TreeSize(500));
            assert_eq!(trusted_root, old.checkpoint.root);
            assert_eq!(new_root, mth(&leaves(&forked[..500])));
        }
        other => panic!("{other}"),
    }
    assert_eq!(trusted.size(), TreeSize(500), "state kept");
    drop(client);
}

#[tokio::test]
async fn another_view_of_the_log_is_cross_checked() {
    let (source, entries, signed) = log(1_000);
    let client = client(&source);
    let l = leaves(&entries);
    let same = checkpoint(&l, 700, 5);
    client.cross_check(&same, &signed).await.unwrap();
    let mut forked = l.clone();
    forked[3] = leaf_hash(b"x");
    let other = checkpoint(&forked, 700, 5);
    let err = client.cross_check(&other, &signed).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Fork {
                size: TreeSize(700),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn leaves_are_found_by_hash_in_level_0_tiles() {
    let (source, entries, signed) = log(1_000);
    let client = client(&source);
    let found = client
        .find_leaf(&leaf_hash(&entries[777]), &signed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.index(), LeafIndex(777));
    assert!(
        client
            .find_leaf(&leaf_hash(b"absent"), &signed)
            .await
            .unwrap()
            .is_none()
    );
}

fn witness(n: u8) -> SignerKey {
    SignerKey::from_seed(&format!("w{n}.example"), [40 + n; 32]).unwrap()
}

fn cosigned(signed: &SignedCheckpoint, by: &[u8]) -> String {
    let body = signed.checkpoint.to_body();
    let lines: String = by
        .iter()
        .map(|&n| cosign(&witness(n), &body, 1_700_000_100).unwrap())
        .collect();
    add_cosignatures(&signed.note, &lines).unwrap()
}

fn policy(quorum: Option<usize>) -> WitnessPolicy {
    WitnessPolicy::new(
        (1..=3).map(|n| CosignerKey::of(&witness(n))).collect(),
        quorum,
    )
    .unwrap()
}

#[tokio::test]
async fn checkpoints_need_the_quorum_of_witnesses() {
    let (source, _, signed) = log(10);
    source.set_checkpoint(cosigned(&signed, &[1, 3]));
    let with = |quorum| TileClient::new(source.clone(), verifier()).with_policy(policy(quorum));
    assert_eq!(with(Some(2)).checkpoint().await.unwrap(), {
        let mut s = signed.clone();
        s.note = cosigned(&signed, &[1, 3]);
        s
    });
    // Default: all three.
    let err = with(None).checkpoint().await.unwrap_err();
    match err {
        ClientError::BadCheckpoint(tlog_checkpoint::Error::NoQuorum {
            quorum,
            valid,
            missing,
        }) => {
            assert_eq!((quorum, valid), (3, 2));
            assert_eq!(missing, ["w2.example"]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_quorum_above_the_witnesses_is_refused() {
    assert!(matches!(
        WitnessPolicy::new(vec![CosignerKey::of(&witness(1))], Some(2)),
        Err(ClientError::BadPolicy(_))
    ));
    assert!(matches!(
        WitnessPolicy::new(
            vec![CosignerKey::of(&witness(1)), CosignerKey::of(&witness(1))],
            None
        ),
        Err(ClientError::BadPolicy(_))
    ));
}

#[test]
fn trust_moves_only_to_witnessed_checkpoints_under_a_policy() {
    let l = leaves(&entries(20));
    let old = checkpoint(&l, 10, 1);
    let new = checkpoint(&l, 20, 2);
    let mut trusted = TrustedLog::with_checkpoint(verifier(), &old.note)
        .unwrap()
        .with_policy(policy(Some(2)));
    let proof = consistency_proof(10, &l);
    let err = trusted.advance(new.clone(), &proof).unwrap_err();
    assert!(matches!(
        err,
        ClientError::BadCheckpoint(tlog_checkpoint::Error::NoQuorum { .. })
    ));
    let mut witnessed = new.clone();
    witnessed.note = cosigned(&new, &[2, 3]);
    trusted.advance(witnessed, &proof).unwrap();
    assert_eq!(trusted.size(), TreeSize(20));
}

#[test]
fn receipts_verify_under_a_policy_only_when_witnessed() {
    let l = leaves(&entries(5));
    let mut r = receipt(&l, 2, 5);
    let strict = policy(Some(1));
    assert!(crate::verify_receipt_with(&verifier(), &strict, &r, None).is_err());
    let signed = verifier_checkpoint(&r.checkpoint);
    r.checkpoint = cosigned(&signed, &[1]);
    crate::verify_receipt_with(&verifier(), &strict, &r, None).unwrap();
}

fn verifier_checkpoint(note: &str) -> SignedCheckpoint {
    tlog_checkpoint::verify_checkpoint(&verifier(), note.as_bytes()).unwrap()
}

/// The client refused an answer because a proof did not verify.
fn assert_proof_invalid(err: &ClientError) {
    assert!(
        matches!(err, ClientError::InclusionProofInvalid(_)),
        "{err}"
    );
}
