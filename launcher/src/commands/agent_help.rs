//! `agentfs agent-help`: a short Markdown text to give a coding agent (as a
//! skill, or in AGENTS.md): what an instance is, how to bring the stack up
//! and wait for it, find URLs and logs, run a test client inside the
//! instance, and what not to do. The text is `docs/agent-help.md`, kept
//! true by a test that runs the commands it shows.

use anyhow::Result;

/// The text, as the repository keeps it.
pub const TEXT: &str = include_str!("../../../docs/agent-help.md");

#[derive(Debug, clap::Args)]
pub struct AgentHelpArgs {}

pub fn run(_args: AgentHelpArgs) -> Result<i32> {
    print!("{TEXT}");
    Ok(0)
}
