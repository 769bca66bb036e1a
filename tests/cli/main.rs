//! Command-line tests: the commands, the Hub client and its CLI, and the scale scripts.

mod commands;
mod hub;
mod hub_cli;
mod scale_scripts;
mod hub_mock;
