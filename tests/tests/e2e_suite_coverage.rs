//! The shared end-to-end suite is run by every runtime: each runtime
//! crate's `tests/e2e.rs` invokes `windlass_testkit::e2e_suite!` for each
//! of its executors, which generates a test per scenario and the check
//! that no group of `scenarios::SCENARIOS` is left out without a reason.
//! The core scenarios and the proxy scenarios run on every executor, and no
//! runtime keeps a proxy test file of its own beside the suite (issue 8).

use std::path::Path;

#[test]
fn e2e_suite_is_invoked_by_every_runtime_for_every_executor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lives in the workspace");
    let runtimes: [(&str, &[&str]); 3] = [
        ("runtime-tokio", &["e2e_tokio"]),
        ("runtime-blocking", &["e2e_blocking"]),
        ("runtime-smol", &["e2e_smol", "e2e_async_std"]),
    ];
    for (krate, modules) in runtimes {
        let path = root.join(krate).join("tests/e2e.rs");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let invocations = text.matches("windlass_testkit::e2e_suite! {").count();
        assert_eq!(invocations, modules.len(), "{}", path.display());
        for module in modules {
            let head = format!("    {module}: ");
            let at = text
                .find(&head)
                .unwrap_or_else(|| panic!("{}: no suite for {module}", path.display()));
            let runs = text[at..].lines().nth(1).unwrap_or_default();
            assert!(
                runs.trim_start().starts_with("runs [Core"),
                "{}: {module} runs the core scenarios: {runs:?}",
                path.display()
            );
            assert!(
                runs.contains(" Proxy]") || runs.contains(" Proxy,"),
                "{}: {module} runs the proxy scenarios: {runs:?}",
                path.display()
            );
        }
        let own_copy = root.join(krate).join("tests/e2e_proxy.rs");
        assert!(
            !own_copy.exists(),
            "{}: the proxy scenarios live in windlass_testkit::scenarios::proxy",
            own_copy.display()
        );
    }
}
