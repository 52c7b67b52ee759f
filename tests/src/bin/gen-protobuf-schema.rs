//! Rewrite windlass-proto's protobuf schema table from the k8s-pb and
//! k8s-openapi sources in cargo's registry cache (see
//! `windlass_testkit::protobuf_schema`).

fn main() {
    let source = match windlass_testkit::protobuf_schema::generate_from_registry() {
        Ok(source) => source,
        Err(e) => {
            eprintln!("gen-protobuf-schema: {e}");
            std::process::exit(1);
        }
    };
    let path = windlass_testkit::protobuf_schema::repo_root()
        .join(windlass_testkit::protobuf_schema::OUTPUT);
    if let Err(e) = std::fs::write(&path, source) {
        eprintln!("gen-protobuf-schema: {}: {e}", path.display());
        std::process::exit(1);
    }
    println!("wrote {}", path.display());
}
