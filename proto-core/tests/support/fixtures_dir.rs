// The fixtures folder for windlass-proto's tests: `WINDLASS_FIXTURES`, or
// `../shared/fixtures` beside the repository root. Shared by the unit tests
// (through `include!`) and the integration tests, so every test finds the
// folder by the same rule as the testkit's `fixtures::dir()`.

/// The fixtures folder, or `None` (after printing why) when it is absent and
/// `WINDLASS_REQUIRE_FIXTURES` is not `1`; a panic when it is required.
pub fn dir() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("WINDLASS_FIXTURES") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let required = std::env::var("WINDLASS_REQUIRE_FIXTURES").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "fixtures folder {} is missing and WINDLASS_REQUIRE_FIXTURES=1",
        dir.display()
    );
    eprintln!(
        "skipped: fixtures folder {} not found (set WINDLASS_FIXTURES to run this test)",
        dir.display()
    );
    None
}
