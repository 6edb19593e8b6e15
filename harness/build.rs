//! Generates the etcd front-end's gRPC server code from harness/proto (protoc is required, as
//! for the etcd-client crate).

fn main() {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .compile_protos(&["proto/etcd.proto", "proto/kv.proto"], &["proto"])
        .expect("compiling harness/proto/etcd.proto (is protoc installed?)");
}
