//! The shim reaches servers started below wrap's child: through `sh -c`,
//! shebang scripts (`#!/usr/bin/env node`) and npm scripts.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::fixtures::Fixture;
use common::{get_json, TestHome};

#[test]
fn sh_c_shebang_and_npm_scripts_inherit_the_shim() {
    let home = TestHome::new();
    let work = home.dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let server = Fixture::Node.command(&[])[1].clone();

    let script = work.join("serve");
    std::fs::write(
        &script,
        format!("#!/usr/bin/env node\nprocess.argv.splice(2, 0, '4001');\nrequire({server:?});\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        work.join("package.json"),
        format!(r#"{{"name":"@acme/npm-app","scripts":{{"start":"node {server} 4002"}}}}"#),
    )
    .unwrap();

    let sh = home.wrap(
        "sh",
        "a",
        &["sh".into(), "-c".into(), format!("node {server} 4000")],
    );
    let shebang = home.wrap("shebang", "a", &[script.to_string_lossy().into_owned()]);
    // No --name: wrap takes it from package.json, without the npm scope.
    let mut npm = home.agentfs(&[]);
    npm.current_dir(&work).args([
        "wrap",
        "--no-router",
        "--instance",
        "a",
        "--",
        "npm",
        "run",
        "start",
    ]);
    let npm = common::Wrapped::spawn(npm);

    for (app, port) in [("sh", 4000), ("shebang", 4001), ("npm-app", 4002)] {
        let car = home.wait_sidecar(app, "a", Some(port));
        assert_eq!(get_json(&car.socket, "/")["address"]["port"], port, "{app}");
    }
    drop((sh, shebang, npm));
}
