//! `agentfs mcp`: a Model Context Protocol server over stdio (the official
//! Rust SDK, `rmcp`), so a coding agent drives stacks with tools instead of
//! scraping the CLI.
//!
//! Each tool runs the `agentfs` command of the same name with `--json` (the
//! binary itself, as a subprocess, in the directory the tool is given, else
//! the server's): so a tool's result is exactly that command's JSON, as its
//! structured content and as text. A command that exits non-zero makes an
//! error result, with what it said on stderr; one that printed no JSON
//! answers `{"error": …, "exit_code": N}`. stdout is the transport: nothing
//! else is ever written to it.
//!
//! Tools: `up` (`up -d`, with `--wait` unless `wait` is false), `down`,
//! `wait`, `status` (`ps --stacks --json` and `ps --json`: the stacks and
//! every instance, with URLs), `url`, `logs`, `restart`, `stop`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{json, Map, Value};

/// Added to a tool's own timeout before its command is given up on.
const MARGIN: Duration = Duration::from_secs(60);
/// The timeout of commands that take none.
const DEFAULT_TIMEOUT: u64 = 120;

const INSTRUCTIONS: &str = "\
agentfs runs each git work tree's stack (agentfs.toml or Procfile) as its own instance: the same \
ports in every instance, each a private localhost, reached at http://INSTANCE.SERVICE.localhost:7380. \
Call `up` to start this work tree's stack and wait until it is ready, `url` for a service's URL, \
`logs` when something fails, `down` when done. Pass `dir` (a directory in the work tree) when the \
server does not run there. Never kill processes by port, and never use another work tree's URL.";

/// Runs the server on stdin and stdout until the client goes.
pub fn serve() -> Result<i32> {
    let exe = std::env::current_exe().context("cannot find the agentfs executable")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let service = Server { exe: Arc::new(exe) }
            .serve(rmcp::transport::stdio())
            .await
            .context("the MCP client did not initialise")?;
        service.waiting().await.context("the MCP server failed")?;
        anyhow::Ok(0)
    })
}

struct Server {
    exe: Arc<PathBuf>,
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentfs", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let call = Call::parse(&request.name, &args)
            .map_err(|message| ErrorData::invalid_params(message, None))?;
        Ok(call.run(&self.exe).await.into())
    }
}

/// A tool call made into `agentfs` command lines.
#[derive(Debug, PartialEq)]
struct Call {
    /// Each command's arguments (`status` runs two).
    commands: Vec<Vec<String>>,
    /// Where they run.
    dir: Option<PathBuf>,
    timeout: Duration,
}

impl Call {
    fn parse(tool: &str, args: &Map<String, Value>) -> Result<Call, String> {
        let known: &[&str] = match tool {
            "up" => &["services", "instance", "wait", "timeout", "dir"],
            "down" | "wait" => &["services", "instance", "timeout", "dir"],
            "status" => &["dir"],
            "url" => &["name", "dir"],
            "logs" => &["name", "lines", "since", "dir"],
            "restart" => &["service", "instance", "dir"],
            "stop" => &["name", "timeout", "dir"],
            other => return Err(format!("there is no tool {other:?}")),
        };
        if let Some(unknown) = args.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "{tool} takes no argument {unknown:?} (it takes: {})",
                known.join(", ")
            ));
        }
        if tool == "down" && args.contains_key("services") {
            return Err("down stops the whole stack: it takes no services".into());
        }
        let a = Args(args);
        let timeout = a.number("timeout")?;
        let mut command: Vec<String> = vec![tool.to_owned()];
        let flag = |command: &mut Vec<String>, name: &str, value: Option<String>| {
            if let Some(value) = value {
                command.extend([format!("--{name}"), value]);
            }
        };
        let commands = match tool {
            "status" => vec![
                vec!["ps".into(), "--stacks".into(), "--json".into()],
                vec!["ps".into(), "--json".into()],
            ],
            _ => {
                if tool == "up" {
                    command.push("-d".into());
                    if a.boolean("wait")?.unwrap_or(true) {
                        command.push("--wait".into());
                    }
                }
                command.push("--json".into());
                flag(&mut command, "instance", a.string("instance")?);
                flag(&mut command, "timeout", timeout.map(|t| t.to_string()));
                flag(
                    &mut command,
                    "lines",
                    a.number("lines")?.map(|n| n.to_string()),
                );
                // Names after `--`, so none is ever taken for a flag.
                command.push("--".into());
                command.extend(a.strings("services")?);
                command.extend(a.string("service")?.or(a.string("name")?));
                if matches!(tool, "url" | "restart" | "stop") && command.last().unwrap() == "--" {
                    return Err(format!("{tool} needs a name"));
                }
                vec![command]
            }
        };
        Ok(Call {
            commands,
            dir: a.string("dir")?.map(PathBuf::from),
            timeout: Duration::from_secs(timeout.unwrap_or(DEFAULT_TIMEOUT)) + MARGIN,
        })
    }

    async fn run(&self, exe: &PathBuf) -> CallToolResult {
        let mut results = Vec::new();
        for command in &self.commands {
            match self.run_one(exe, command).await {
                Ok(value) => results.push(value),
                Err(error) => return error,
            }
        }
        let value = match <[Value; 2]>::try_from(results) {
            Ok([stacks, instances]) => json!({ "stacks": stacks, "instances": instances }),
            Err(mut one) => one.pop().unwrap_or(Value::Null),
        };
        CallToolResult::structured(value)
    }

    /// One command's JSON, or the error result it makes.
    async fn run_one(&self, exe: &PathBuf, args: &[String]) -> Result<Value, CallToolResult> {
        let mut command = tokio::process::Command::new(exe);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let output = match tokio::time::timeout(self.timeout, command.output()).await {
            Err(_) => {
                return Err(failure(
                    None,
                    &format!("no answer within {:?}", self.timeout),
                ))
            }
            Ok(Err(err)) => return Err(failure(None, &format!("cannot run agentfs: {err}"))),
            Ok(Ok(output)) => output,
        };
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let value: Option<Value> = serde_json::from_slice(&output.stdout).ok();
        match (output.status.code(), value) {
            (Some(0), Some(value)) => Ok(value),
            (_, Some(value)) => {
                let mut result = CallToolResult::structured_error(value);
                if !stderr.is_empty() {
                    result.content.push(ContentBlock::text(stderr));
                }
                Err(result)
            }
            (code, None) => Err(failure(code, &stderr)),
        }
    }
}

fn failure(code: Option<i32>, message: &str) -> CallToolResult {
    CallToolResult::structured_error(json!({ "error": message, "exit_code": code }))
}

/// A tool's arguments, read with their types checked.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{key} must be a string, not {other}")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("{key} must hold strings, not {other}")),
                })
                .collect(),
            Some(other) => Err(format!("{key} must be an array of strings, not {other}")),
        }
    }

    fn number(&self, key: &str) -> Result<Option<u64>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{key} must be a whole number, not {value}")),
        }
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("{key} must be true or false, not {other}")),
        }
    }
}

/// The tools and their input schemas.
fn tools() -> Vec<Tool> {
    let dir = json!({"type": "string", "description": "A directory in the work tree of the stack (default: the server's)."});
    let instance = json!({"type": "string", "description": "The stack's instance (default: the work tree's git branch)."});
    let services = json!({"type": "array", "items": {"type": "string"}, "description": "Service names from the stack file (default: all)."});
    let timeout =
        json!({"type": "integer", "minimum": 0, "description": "Seconds to wait (default 120)."});
    let name = json!({"type": "string", "description": "A service of this work tree's stack, or INSTANCE.APP."});
    let tool =
        |name: &'static str, description: &'static str, properties: Value, required: &[&str]| {
            let schema = json!({"type": "object", "properties": properties, "required": required});
            let Value::Object(schema) = schema else {
                unreachable!("a JSON object literal")
            };
            Tool::new(name, description, Arc::new(schema))
        };
    vec![
        tool("up", "Start the work tree's stack (or the services named, with what they need) in the background, and wait until every service is ready (unless wait is false). Running it again starts only what is not running.",
            json!({"services": services, "instance": instance, "wait": {"type": "boolean", "description": "Wait until ready (default true); false: until started."}, "timeout": timeout, "dir": dir}), &[]),
        tool("down", "Stop the work tree's stack: its services in reverse dependency order, then its supervisor. Logs stay.",
            json!({"instance": instance, "timeout": {"type": "integer", "minimum": 0, "description": "Seconds each service gets after SIGTERM (default 10)."}, "dir": dir}), &[]),
        tool("wait", "Wait until the stack's services (or those named) are ready. An error result when one failed (with its last lines of output) or the timeout passed (with what is not ready and why).",
            json!({"services": services, "instance": instance, "timeout": timeout, "dir": dir}), &[]),
        tool("status", "The stacks that are up, each service's state and URL, and every instance with its URL.",
            json!({"dir": dir}), &[]),
        tool("url", "The URL of a service (or instance) through the router.",
            json!({"name": name, "dir": dir}), &["name"]),
        tool("logs", "The last lines of a service's output, or what it wrote since a time (default: every service of the stack).",
            json!({"name": name, "lines": {"type": "integer", "minimum": 0, "description": "How many lines (default: all that is kept)."}, "since": {"type": "string", "description": "Only what was written since this time: RFC 3339, or a duration ago (30s, 5m)."}, "dir": dir}), &[]),
        tool("restart", "Stop one service of the running stack and start it again.",
            json!({"service": {"type": "string", "description": "The service to restart."}, "instance": instance, "dir": dir}), &["service"]),
        tool("stop", "Stop one instance (a service of this stack, or INSTANCE.APP) as Ctrl-C on its wrap would.",
            json!({"name": name, "timeout": {"type": "integer", "minimum": 0, "description": "Seconds before SIGKILL (default 10)."}, "dir": dir}), &["name"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tool: &str, args: Value) -> Result<Call, String> {
        let Value::Object(args) = args else { panic!() };
        Call::parse(tool, &args)
    }

    #[test]
    fn tools_become_command_lines() {
        let up = parse(
            "up",
            json!({"services": ["web"], "timeout": 30, "dir": "/w"}),
        )
        .unwrap();
        assert_eq!(
            up.commands,
            [[
                "up",
                "-d",
                "--wait",
                "--json",
                "--timeout",
                "30",
                "--",
                "web"
            ]]
        );
        assert_eq!(up.dir, Some(PathBuf::from("/w")));
        let started = parse("up", json!({"wait": false, "instance": "x"})).unwrap();
        assert_eq!(
            started.commands,
            [["up", "-d", "--json", "--instance", "x", "--"]]
        );
        let logs = parse("logs", json!({"name": "--all", "lines": 5})).unwrap();
        assert_eq!(
            logs.commands,
            [["logs", "--json", "--lines", "5", "--", "--all"]]
        );
        assert_eq!(parse("status", json!({})).unwrap().commands.len(), 2);
    }

    #[test]
    fn bad_arguments_are_refused() {
        for (tool, args, says) in [
            (
                "up",
                json!({"service": "web"}),
                "up takes no argument \"service\"",
            ),
            (
                "up",
                json!({"timeout": "soon"}),
                "timeout must be a whole number",
            ),
            (
                "up",
                json!({"services": "web"}),
                "services must be an array",
            ),
            ("url", json!({}), "url needs a name"),
            ("down", json!({"services": ["a"]}), "no services"),
            ("explode", json!({}), "there is no tool"),
        ] {
            let err = parse(tool, args).unwrap_err();
            assert!(err.contains(says), "{tool}: {err}");
        }
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        let names: Vec<String> = tools().iter().map(|t| t.name.to_string()).collect();
        assert_eq!(
            names,
            ["up", "down", "wait", "status", "url", "logs", "restart", "stop"]
        );
        for tool in tools() {
            assert_eq!(tool.input_schema["type"], "object");
        }
    }
}
