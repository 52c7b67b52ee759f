//! Rewrite windlass-proto's protobuf schema table from the k8s-pb and
//! k8s-openapi sources in cargo's registry cache and the kubernetes/api
//! fixtures (see `windlass_testkit::protobuf_schema`). Needs the fixtures
//! folder (`WINDLASS_FIXTURES`).

use windlass_testkit::protobuf_schema::{OUTPUT, generate_from_registry, repo_root};

fn main() {
    let Some(fixtures) = windlass_testkit::fixtures::dir() else {
        eprintln!("gen-protobuf-schema: the fixtures folder is required");
        std::process::exit(1);
    };
    let source = match generate_from_registry(&fixtures) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("gen-protobuf-schema: {e}");
            std::process::exit(1);
        }
    };
    let path = repo_root().join(OUTPUT);
    if let Err(e) = std::fs::write(&path, source) {
        eprintln!("gen-protobuf-schema: {}: {e}", path.display());
        std::process::exit(1);
    }
    println!("wrote {}", path.display());
}
