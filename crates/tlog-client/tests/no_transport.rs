//! Offline verification builds without a transport: with `default-features = false` the crate's dependency tree
//! has none of the gRPC stack. `cargo tree` only resolves the graph, so these tests compile nothing.

use std::process::Command;

/// The gRPC stack: these crates and their `-` suffixed family (`tokio-stream`, `tonic-prost`, `hyper-util`,
/// `tower-service`, ...).
const TRANSPORT: &[&str] = &["tokio", "tonic", "hyper", "h2", "tower", "axum"];

fn is_transport(package: &str) -> bool {
    TRANSPORT.iter().any(|t| {
        package == *t
            || package
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

/// The names of the packages in `cargo tree -p tlog-client -e normal`, plus `extra` arguments.
fn normal_dependencies(extra: &[&str]) -> Vec<String> {
    // Cargo sets CARGO for the tests it runs; the fallback serves a test binary started by hand.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "--offline",
            "--package",
            "tlog-client",
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
    let packages = normal_dependencies(&["--no-default-features"]);
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
    let packages = normal_dependencies(&[]);
    for wanted in ["tonic", "tokio", "hyper"] {
        assert!(packages.iter().any(|p| p == wanted), "{wanted} missing");
    }
}
