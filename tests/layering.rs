//! The layering the README promises, read off the dependency graph: offline verification (`tlog-client` without
//! its default `grpc` feature) has none of the gRPC stack; storage and the server build without RocksDB (the
//! in-memory store, for the fuzzer and embedders); and nothing depends on the server. `cargo tree` only resolves
//! the graph, so these tests compile nothing.

use std::process::Command;

/// The network stacks (gRPC, and the HTTP client of the tile reader): these crates and their `-` suffixed family
/// (`tokio-stream`, `tonic-prost`, `hyper-util`, `tower-service`, ...).
const TRANSPORT: &[&str] = &["tokio", "tonic", "hyper", "h2", "tower", "axum", "reqwest"];

fn is_transport(package: &str) -> bool {
    TRANSPORT.iter().any(|t| {
        package == *t
            || package
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The names of the packages in `cargo tree -p PACKAGE -e normal`, plus `extra` arguments.
fn normal_dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    // Cargo sets CARGO for the tests it runs; the fallback serves a test binary started by hand.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "--package",
            package,
            "--edges",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(extra)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn without_grpc_feature_no_transport_crate_is_a_dependency() {
    let packages = normal_dependencies("tlog-client", &["--no-default-features"]);
    // The tree was really printed: the offline verifier still uses the proto messages.
    assert!(packages.iter().any(|p| p == "prost"), "{packages:?}");
    let transport: Vec<_> = packages.iter().filter(|p| is_transport(p)).collect();
    assert!(
        transport.is_empty(),
        "tlog-client --no-default-features depends on {transport:?}"
    );
}

#[test]
fn default_features_bring_the_grpc_client() {
    let packages = normal_dependencies("tlog-client", &[]);
    for wanted in ["tonic", "tokio", "hyper", "reqwest"] {
        assert!(packages.iter().any(|p| p == wanted), "{wanted} missing");
    }
}

#[test]
fn storage_and_server_build_without_rocksdb() {
    for package in ["tlog-storage", "tlog-server"] {
        let packages = normal_dependencies(package, &["--no-default-features"]);
        assert!(packages.iter().any(|p| p == "tlog-core"), "{packages:?}");
        let rocks: Vec<_> = packages.iter().filter(|p| p.contains("rocksdb")).collect();
        assert!(
            rocks.is_empty(),
            "{package} --no-default-features depends on {rocks:?}"
        );
        let with_defaults = normal_dependencies(package, &[]);
        assert!(with_defaults.iter().any(|p| p == "rocksdb"), "{package}");
    }
}

#[test]
fn nothing_depends_on_the_server() {
    // Inverted: tlog-server and every package that depends on it through normal (not dev) edges.
    let dependents =
        normal_dependencies("tlog-server", &["--invert", "tlog-server", "--workspace"]);
    assert_eq!(dependents, ["tlog-server"], "{dependents:?}");
}

#[test]
fn the_archive_does_not_depend_on_the_server_or_rocksdb() {
    let packages = normal_dependencies("tlog-archive", &[]);
    assert!(packages.iter().any(|p| p == "object_store"), "{packages:?}");
    let wrong: Vec<_> = packages
        .iter()
        .filter(|p| *p == "tlog-server" || p.contains("rocksdb"))
        .collect();
    assert!(wrong.is_empty(), "tlog-archive depends on {wrong:?}");
}
