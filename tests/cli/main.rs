//! Command-line tests: the commands, the Hub client and its CLI, and the scale scripts.

mod commands;
mod device_counts;
mod gpu_check;
mod hub;
mod hub_cli;
mod hub_mock;
mod scale_scripts;
