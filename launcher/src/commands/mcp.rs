//! `agentfs mcp`: a Model Context Protocol server over stdio, for coding
//! agents: tools `up`, `down`, `wait`, `status`, `url`, `logs`, `restart`
//! and `stop`, each answering with the same JSON as the command's `--json`
//! (see `stack::mcp`).

use anyhow::Result;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Give it to an MCP client as a stdio server, for example:
  {\"mcpServers\": {\"agentfs\": {\"command\": \"agentfs\", \"args\": [\"mcp\"]}}}

Each tool runs the agentfs command of the same name with --json, in the
directory the tool is given (default: the server's), and answers with its
JSON; a tool whose command failed answers as an error, with what it said.")]
pub struct McpArgs {}

pub fn run(_args: McpArgs) -> Result<i32> {
    crate::stack::mcp::serve()
}
