//! A run directory that floods the router with changes of one bad file
//! costs one log line, however often the file changes, as long as the kind
//! of what is wrong with it stays the same.

mod common;

use std::io::Write;

use common::{wait_for, TestHome, Wrapped};

#[test]
fn a_bad_sidecar_rewritten_again_and_again_is_reported_once() {
    let home = TestHome::new();
    let router = Wrapped::spawn(home.agentfs(&["router", "--foreground", "--port", "0"]));
    router.wait_stderr("router listening");
    let bad = home.run_dir().join("bad.json");
    let mut file = std::fs::File::create(&bad).unwrap();
    for n in 0..300 {
        // Unparseable at every size, at a different position each time.
        write!(file, "{{\"version\": 1, \"garbage\": {n} ").unwrap();
        file.flush().unwrap();
    }
    // A good instance written after it: once it is routed, every change of
    // the bad file before it has been read.
    let _ok = home.wrap(
        "ok",
        "a",
        &["python3", "-m", "http.server", "0", "--bind", "127.0.0.1"].map(String::from),
    );
    wait_for("the good instance to be routed", || {
        let routes = common::get_json(&home.control(), "/api/routes").to_string();
        routes.contains("\"ok\"").then_some(())
    });
    let reported = router
        .stderr()
        .iter()
        .filter(|line| line.contains("bad.json"))
        .count();
    assert_eq!(reported, 1, "{:#?}", router.stderr());
}
