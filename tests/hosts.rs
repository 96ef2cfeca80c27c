//! `agentfs hosts sync | clean | check --file PATH`: the live names of a
//! real wrapped app in the managed block, every other line of the file
//! kept byte for byte, the file's mode kept, and `check` telling a current
//! block from a stale one.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{fixtures::Fixture, TestHome};

const FOREIGN_TOP: &str = "127.0.0.1\tlocalhost\r\n# keep   this spacing\n";
const FOREIGN_BOTTOM: &str = "10.1.2.3 printer.lan printer\n";

#[test]
fn sync_lists_live_names_and_keeps_foreign_lines_byte_for_byte() {
    let home = TestHome::new();
    let file = home.dir.join("hosts");
    let block = "# BEGIN agentfs (old)\n127.0.0.1 gone.localhost\n# END agentfs\n";
    std::fs::write(&file, format!("{FOREIGN_TOP}{block}{FOREIGN_BOTTOM}")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = file.to_str().unwrap();

    let app = home.wrap("shop", "blue", &Fixture::Node.command(&["3000"]));
    home.wait_sidecar("shop", "blue", None);

    let stale = home.run(&["hosts", "check", "--file", path]);
    assert_eq!(stale.status.code(), Some(1));

    let synced = home.run(&["hosts", "sync", "--file", path]);
    assert!(
        synced.status.success(),
        "{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(FOREIGN_TOP), "{text}");
    assert!(text.ends_with(FOREIGN_BOTTOM), "{text}");
    for line in [
        "127.0.0.1 blue.shop.localhost",
        "::1 blue.shop.localhost",
        "127.0.0.1 shop.localhost",
        "127.0.0.1 agentfs.localhost",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    assert!(!text.contains("gone.localhost"), "{text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    let current = home.run(&["hosts", "check", "--file", path]);
    assert_eq!(
        current.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&current.stdout)
    );

    drop(app);
    let cleaned = home.run(&["hosts", "clean", "--file", path]);
    assert!(cleaned.status.success());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{FOREIGN_TOP}{FOREIGN_BOTTOM}")
    );
}

#[test]
fn a_block_without_an_end_is_refused_and_the_file_left_alone() {
    let home = TestHome::new();
    let file = home.dir.join("hosts");
    let text = format!("{FOREIGN_TOP}# BEGIN agentfs\n127.0.0.1 x.localhost\n");
    std::fs::write(&file, &text).unwrap();
    let out = home.run(&["hosts", "sync", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no `# END agentfs` line"), "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn the_router_keeps_the_block_current_with_sync_hosts() {
    let home = TestHome::new();
    let file = home.dir.join("hosts");
    std::fs::write(&file, FOREIGN_TOP).unwrap();
    let flag = format!("--sync-hosts={}", file.display());
    let _router = common::router::TestRouter::start_with_args(&home, &[&flag]);
    let listed = |name: &str| {
        let text = std::fs::read_to_string(&file).unwrap();
        text.lines().any(|l| l == format!("127.0.0.1 {name}"))
    };
    common::wait_for("the router's own name in the block", || {
        listed("agentfs.localhost").then_some(())
    });
    let app = home.wrap("shop", "green", &Fixture::Node.command(&["3000"]));
    common::wait_for("green's names in the block", || {
        listed("green.shop.localhost").then_some(())
    });
    drop(app);
    common::wait_for("green's names out of the block", || {
        (!listed("green.shop.localhost")).then_some(())
    });
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(FOREIGN_TOP), "{text}");
}
