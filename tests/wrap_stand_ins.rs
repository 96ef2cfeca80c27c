//! Interpreter stand-ins bring the shim back where something between wrap
//! and the app stripped the preload variable (on macOS, SIP-protected `sh`
//! and `env` do). Here `env -u LD_PRELOAD` does the stripping.

mod common;

use common::fixtures::Fixture;
use common::{get_json, TestHome};

fn stripped_node(port: &str) -> Vec<String> {
    let server = Fixture::Node.command(&[port]).join(" ");
    vec![
        "sh".into(),
        "-c".into(),
        format!("env -u LD_PRELOAD {server}"),
    ]
}

#[test]
fn stand_ins_restore_the_shim_after_the_preload_variable_is_stripped() {
    let home = TestHome::new();
    let mut command = home.agentfs(&[
        "wrap",
        "--no-router",
        "--stand-ins",
        "--name",
        "strip",
        "--instance",
        "a",
        "--",
    ]);
    command.args(stripped_node("3000"));
    let _app = common::Wrapped::spawn(command);
    let car = home.wait_sidecar("strip", "a", Some(3000));
    assert_eq!(get_json(&car.socket, "/")["address"]["port"], 3000);
    assert!(
        car.argv.iter().any(|a| a.ends_with("server.js")),
        "{:?}",
        car.argv
    );
}

#[test]
fn without_stand_ins_a_stripped_app_runs_unconverted() {
    let home = TestHome::new();
    let mut command = home.agentfs(&[
        "wrap",
        "--no-router",
        "--no-stand-ins",
        "--name",
        "strip",
        "--instance",
        "b",
        "--",
    ]);
    command.args(stripped_node("0"));
    let app = common::Wrapped::spawn(command);
    // The sidecar is written inside listen(), before node reports listening.
    app.wait_stdout("listening");
    assert!(
        home.run_dir_files().is_empty(),
        "{:?}",
        home.run_dir_files()
    );
}
