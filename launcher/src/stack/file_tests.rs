use super::*;

const EXAMPLE: &str = r#"
[services.db]
run = "postgres -D .agentfs/{instance}/pg -p 5432"
setup = "initdb -D .agentfs/{instance}/pg"

[services.api]
run = "uvicorn app:app --port 8000"
dir = "api"
env = { DATABASE_URL = "postgresql://localhost:5432/postgres" }
after = ["db"]
ready = "http://localhost:8000/health"

[services.web]
run = "npm run dev"
after = ["api"]
restart = "always"
"#;

fn parse(text: &str) -> Result<StackFile> {
    parse_toml(Path::new("/w/agentfs.toml"), text)
}

fn error(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn the_example_reads_in_file_order() {
    let stack = parse(EXAMPLE).unwrap();
    assert_eq!(stack.names(), ["db", "api", "web"]);
    assert_eq!(stack.dir, Path::new("/w"));
    let api = stack.service("api").unwrap();
    assert_eq!(api.line, 6);
    assert_eq!(api.dir.as_deref(), Some("api"));
    assert_eq!(api.after, ["db"]);
    assert_eq!(
        api.ready,
        Ready::Http {
            port: 8000,
            path: "/health".into()
        }
    );
    assert_eq!(stack.service("web").unwrap().restart, Restart::Always);
    assert_eq!(stack.service("db").unwrap().restart, Restart::OnFailure);
}

#[test]
fn mistakes_name_the_line() {
    let unknown = error("[services.web]\nrun = 'x'\nrn = 'y'\n");
    assert!(unknown.contains("line 3") && unknown.contains("unknown field `rn`"));
    let missing = error("[services.web]\nrun = 'x'\n\n[services.api]\nafter = ['web']\n");
    assert!(missing.contains("line 4") && missing.contains("missing field `run`"));
    let label = error("[services.web]\nrun = 'x'\n[services.My_Api]\nrun = 'y'\n");
    assert!(label.contains("line 3: service name \"My_Api\" is not a DNS label"));
    let ready = error("[services.web]\nrun = 'x'\n\nready = 'tcp 3000'\n");
    assert!(
        ready.contains("line 4: service web: ready \"tcp 3000\""),
        "{ready}"
    );
    let restart = error("[services.web]\nrun = 'x'\nrestart = 'often'\n");
    assert!(restart.contains("line 3: service web: restart \"often\""));
    let after = error("[services.web]\nrun = 'x'\nafter = ['api']\n");
    assert!(after.contains("line 1: service web is started after \"api\""));
    let cycle = error("[services.a]\nrun='x'\nafter=['b']\n[services.b]\nrun='y'\nafter=['a']\n");
    assert!(cycle.contains("makes a cycle: a -> b -> a"), "{cycle}");
    assert!(error("").contains("defines no service"));
    assert!(error("[servics.web]\nrun='x'\n").contains("unknown field `servics`"));
}

#[test]
fn found_walking_up_to_the_work_tree_root_and_procfile_only_without_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let deep = root.join("a/b");
    fs::create_dir_all(&deep).unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    assert!(find(&deep).unwrap().is_none());
    assert!(require(&deep)
        .unwrap_err()
        .to_string()
        .contains("no agentfs.toml"));
    // Above the work tree's root is never looked at.
    fs::write(tmp.path().join(TOML_NAME), "[services.x]\nrun='x'\n").unwrap();
    assert!(find(&deep).unwrap().is_none());
    fs::write(root.join(PROCFILE_NAME), "web: node web.js\n").unwrap();
    let found = find(&deep).unwrap().unwrap();
    assert_eq!(found.path, root.join(PROCFILE_NAME));
    assert_eq!(found.names(), ["web"]);
    fs::write(
        root.join(TOML_NAME),
        "[services.web]\nrun = 'node web.js'\n",
    )
    .unwrap();
    assert_eq!(find(&deep).unwrap().unwrap().path, root.join(TOML_NAME));
}

#[test]
fn a_toml_and_a_procfile_that_disagree_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join(TOML_NAME), "[services.web]\nrun = 'node web.js'\n").unwrap();
    fs::write(dir.join(PROCFILE_NAME), "web: node web.js\n").unwrap();
    assert!(find(dir).unwrap().is_some());
    fs::write(dir.join(PROCFILE_NAME), "web: node other.js\n").unwrap();
    let err = find(dir).unwrap_err().to_string();
    assert!(err.contains("disagree: service web runs `node other.js` in Procfile line 1"));
    fs::write(dir.join(PROCFILE_NAME), "web: node web.js\nworker: x\n").unwrap();
    let err = find(dir).unwrap_err().to_string();
    assert!(err.contains("Procfile line 2 has service worker"), "{err}");
}
