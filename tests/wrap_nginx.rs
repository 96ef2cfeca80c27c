//! Real nginx under wrap: two listeners, then a reload whose config drops
//! one. nginx lives on and its lock stays held, but the dropped listener
//! refuses connections: it is shown as closed, not live, and pruned.

mod common;

use common::bridge::free_port;
use common::{http_get, wait_for, TestHome};

fn config(dir: &std::path::Path, ports: &[u16]) -> String {
    let servers: String = ports
        .iter()
        .map(|p| format!("  server {{ listen 127.0.0.1:{p}; location / {{ return 200 \"port {p}\\n\"; }} }}\n"))
        .collect();
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log stderr notice;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         {servers}}}\n"
    )
}

fn ps_status(home: &TestHome, port: u16) -> Option<String> {
    let out = home.run(&["ps", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
    rows.iter()
        .find(|r| r["port"] == port)
        .map(|r| r["status"].as_str().unwrap_or("").to_owned())
}

#[test]
fn a_listener_nginx_drops_on_reload_is_closed_not_live() {
    let home = TestHome::new();
    let dir = home.dir.join("nginx");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let (kept, dropped) = (free_port(), free_port());
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(&dir, &[kept, dropped])).unwrap();
    let (prefix, conf_arg) = (dir.display().to_string(), conf.display().to_string());
    let _nginx = home.wrap(
        "ngx",
        "a",
        &["nginx", "-p", &prefix, "-c", &conf_arg].map(String::from),
    );
    let kept_car = home.wait_sidecar("ngx", "a", Some(kept));
    home.wait_sidecar("ngx", "a", Some(dropped));
    assert_eq!(ps_status(&home, dropped).as_deref(), Some("live"));

    std::fs::write(&conf, config(&dir, &[kept])).unwrap();
    // nginx writes its pid file once it runs, not before it binds.
    let master: u32 = wait_for("nginx's pid file", || {
        std::fs::read_to_string(dir.join("nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    common::send_signal(master, libc::SIGHUP);
    wait_for("the dropped listener to show as closed", || {
        (ps_status(&home, dropped).as_deref() == Some("closed")).then_some(())
    });
    assert_eq!(ps_status(&home, kept).as_deref(), Some("live"));
    let (status, body) = http_get(&kept_car.socket, "/").unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, format!("port {kept}").as_str())
    );

    let pruned = home.run(&["ps", "--prune"]);
    assert!(String::from_utf8_lossy(&pruned.stderr).contains("removed 1 stale entry"));
    assert_eq!(ps_status(&home, dropped), None);
    assert_eq!(ps_status(&home, kept).as_deref(), Some("live"));
}
