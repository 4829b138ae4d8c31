//! Generates the tlog.v1 prost messages and tonic client/server from `proto/tlog/v1/log.proto`.
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

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
