//! Rewrite windlass-proto's protobuf schema table and direct encoders from the k8s-pb and
//! k8s-openapi sources in cargo's registry cache and the kubernetes/api
//! fixtures (see `windlass_testkit::protobuf_schema`). Needs the fixtures
//! folder (`WINDLASS_FIXTURES`).

use windlass_testkit::protobuf_direct;
use windlass_testkit::protobuf_schema::{OUTPUT, generate_from_registry, repo_root};

fn main() {
    let Some(fixtures) = windlass_testkit::fixtures::dir() else {
        eprintln!("gen-protobuf-schema: the fixtures folder is required");
        std::process::exit(1);
    };
    let generated = match generate_from_registry(&fixtures) {
        Ok(generated) => generated,
        Err(e) => {
            eprintln!("gen-protobuf-schema: {e}");
            std::process::exit(1);
        }
    };
    for (output, source) in [
        (OUTPUT, generated.schema),
        (protobuf_direct::OUTPUT, generated.direct),
    ] {
        let path = repo_root().join(output);
        if let Err(e) = std::fs::write(&path, source) {
            eprintln!("gen-protobuf-schema: {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}
