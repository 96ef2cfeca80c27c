//! What a user types: one module per `agentfs` subcommand, each with its
//! clap arguments and a `run()` that reads as the command's story, calling
//! the machinery one folder away.

pub mod agent_help;
pub mod args;
pub mod bridge;
pub mod completions;
pub mod doctor;
pub mod down;
pub mod exec;
pub mod hosts;
pub mod logs;
pub mod mcp;
pub mod netns;
pub mod ps;
pub mod reaper;
pub mod restart;
pub mod route;
pub mod router;
pub mod stop;
pub mod trust;
pub mod up;
pub mod url;
pub mod wait;
pub mod wrap;
