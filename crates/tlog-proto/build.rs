//! Generates the tlog.v1 prost messages from `proto/tlog/v1/log.proto`, and with the `grpc` feature the tonic
//! client and server too.
//!
//! `protox` (a pure-Rust protobuf compiler) replaces a system `protoc`, so building needs no external tools.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let include = manifest_dir.join("../../proto");
    let proto = include.join("tlog/v1/log.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    let mut compiler = protox::Compiler::new([&include])?;
    compiler.include_source_info(true).open_file(&proto)?;

    // The same descriptors serve tonic-reflection at run time.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("tlog_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // Build scripts see the package's features only through the environment. Without the stubs, the
    // generated file is plain prost messages and needs neither tonic nor tonic-prost.
    let grpc = env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
