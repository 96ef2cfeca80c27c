//! What a user types: one module per `agentfs` subcommand, each with its
//! clap arguments and a `run()` that reads as the command's story.

pub mod bridge;
