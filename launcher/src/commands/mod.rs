//! What a user types: one module per `agentfs` subcommand, each with its
//! clap arguments and a `run()` that reads as the command's story, calling
//! the machinery one folder away.

pub mod bridge;
pub mod completions;
pub mod doctor;
pub mod exec;
pub mod logs;
pub mod ps;
pub mod reaper;
pub mod route;
pub mod router;
pub mod stop;
pub mod url;
pub mod wrap;
