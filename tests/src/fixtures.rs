//! Finding `../shared/fixtures`: real data for conformance tests.
//!
//! The folder is named by `WINDLASS_FIXTURES`, and defaults to
//! `../shared/fixtures` beside the repository root. Where it is absent (a
//! user's fresh clone) a test prints why and passes as skipped, unless
//! `WINDLASS_REQUIRE_FIXTURES=1` is set (CI sets it), which turns a missing
//! folder into a failure.

use std::path::{Path, PathBuf};

/// The fixtures folder, or `None` (after printing why) when it is absent and
/// not required.
///
/// # Panics
///
/// When the folder is absent and `WINDLASS_REQUIRE_FIXTURES=1` is set: a
/// test that needs fixtures must then fail rather than pass as skipped.
pub fn dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("WINDLASS_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
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

/// A path below the fixtures folder, or `None` when the folder is absent (see [`dir`]).
pub fn path(relative: &str) -> Option<PathBuf> {
    dir().map(|d| d.join(relative))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixtures_dir_holds_the_readme() {
        if let Some(dir) = super::dir() {
            assert!(
                dir.join("README.md").is_file(),
                "{} has no README.md",
                dir.display()
            );
        }
    }
}
