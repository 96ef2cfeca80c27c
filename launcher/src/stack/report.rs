//! How a stack is shown: the table `up`, `wait` and `ps` print, what a
//! failure or a timeout says, and the JSON object of `--json` (which the
//! MCP server returns as is).

use serde_json::{json, Value};

use crate::stack::state::{StackStatus, State};
use crate::stack::target::Target;

/// One row per service: name, state, pid, URL, detail.
pub fn table(status: &StackStatus) -> String {
    let rows: Vec<[String; 5]> = status
        .services
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.as_str().to_owned(),
                s.pid.map_or("-".to_owned(), |p| p.to_string()),
                s.url.clone(),
                s.detail.clone(),
            ]
        })
        .collect();
    let header = ["SERVICE", "STATE", "PID", "URL", "DETAIL"].map(String::from);
    let rows: Vec<[String; 5]> = std::iter::once(header).chain(rows).collect();
    crate::table::aligned(&rows, "  ")
}

/// What is wrong with `names`: each one's state and why, and for a failed
/// one the last lines of its output.
pub fn problems(status: &StackStatus, names: &[String]) -> String {
    let mut out = String::new();
    for name in names {
        let Some(service) = status.service(name) else {
            out.push_str(&format!("{name}: not in this stack\n"));
            continue;
        };
        out.push_str(&format!(
            "{name} is {}: {}\n",
            service.state.as_str(),
            service.detail
        ));
        if service.state == State::Failed && !service.last_lines.is_empty() {
            out.push_str(&format!(
                "  last lines of its output (agentfs logs {name}):\n"
            ));
            for line in &service.last_lines {
                out.push_str(&format!("  | {line}\n"));
            }
        }
    }
    out
}

/// A running stack as `--json` shows it.
pub fn status_json(status: &StackStatus) -> Value {
    json!({
        "instance": status.instance,
        "file": status.file,
        "up": true,
        "supervisor": status.supervisor,
        "services": status.services,
    })
}

/// The `--json` object: the stack (`up`: whether its supervisor runs) and
/// its services, with whatever the command adds.
pub fn json(target: &Target, status: Option<&StackStatus>, extra: Value) -> Value {
    let mut value = json!({
        "instance": target.instance,
        "file": status
            .map(|s| s.file.display().to_string())
            .or_else(|| target.file.as_ref().map(|f| f.path.display().to_string())),
        "up": status.is_some(),
        "supervisor": status.map(|s| s.supervisor),
        "services": status.map_or(json!([]), |s| json!(s.services)),
    });
    if let (Some(object), Value::Object(extra)) = (value.as_object_mut(), extra) {
        object.extend(extra);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::state::ServiceStatus;

    fn service(name: &str, state: State, detail: &str, lines: &[&str]) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            detail: detail.into(),
            pid: None,
            url: format!("http://x.{name}.localhost:7380"),
            restarts: 0,
            last_exit: None,
            since: "2026-01-01T00:00:00Z".into(),
            last_lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn failures_carry_their_last_lines() {
        let status = StackStatus {
            instance: "x".into(),
            file: "/w/agentfs.toml".into(),
            supervisor: 1,
            router_port: 7380,
            services: vec![
                service("db", State::Ready, "ready", &[]),
                service("api", State::Failed, "exited with code 1", &["boom"]),
            ],
        };
        let text = problems(&status, &["api".into()]);
        assert_eq!(
            text,
            "api is failed: exited with code 1\n  last lines of its output (agentfs logs \
             api):\n  | boom\n"
        );
        let table = table(&status);
        assert!(table.starts_with("  SERVICE  STATE   PID  URL"), "{table}");
        assert!(table.contains("  db       ready   -    http://x.db.localhost:7380"));
    }
}
