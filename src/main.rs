//! The `hyperscale` binary: parse the command line, hand each command to
//! [`hyperscale::commands`], print its report, and map errors to a
//! one-line message and a non-zero exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use hyperscale::cli::{self, BenchCommand, Cli, Command, DataCommand, TasksCommand};
use hyperscale::commands::{self, SweepOutcome, write_json};
use hyperscale::task::cli as task_cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match cli::usage_line(&e) {
            Some(line) => {
                eprintln!("{line}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    init_logging();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", hyperscale::error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; `Ok` carries the exit code of a command that decides
/// it (`bench parity`, `compare`).
fn run(command: Command) -> Result<ExitCode> {
    let note = &mut |text: &str| eprintln!("{text}");
    match command {
        Command::Generate(args) => {
            let mut stdout = std::io::stdout().lock();
            let report = commands::generate(&args, |text| {
                let _ = write!(stdout, "{text}");
                let _ = stdout.flush();
            })?;
            write!(stdout, "{report}")?;
            if let Some(summary) = report.summary() {
                eprintln!("{summary}");
            }
        }
        Command::Bench(BenchCommand::Decode(args)) => {
            let report = commands::bench_decode(&args, note, &mut |text| print!("{text}"))?;
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
        }
        Command::Bench(BenchCommand::Throughput(args)) => {
            let report = commands::bench_throughput(&args, note)?;
            print!("{report}");
            if let Some(path) = &args.json {
                write_json(path, &report)?;
            }
        }
        Command::Bench(BenchCommand::Parity(args)) => {
            let outcome = commands::bench_parity(&args)?;
            print!("{outcome}");
            if let Some(path) = &args.json {
                write_json(path, &outcome)?;
            }
            if let Some(failure) = outcome.failure() {
                eprintln!("{failure}");
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Tasks(TasksCommand::List) => print!("{}", task_cli::list()),
        Command::Tasks(TasksCommand::Show(args)) => print!("{}", commands::tasks_show(&args)?),
        Command::Data(DataCommand::Fetch(args)) => print!("{}", commands::data_fetch(&args)?),
        Command::Grade(args) => print!("{}", commands::grade(&args)?),
        Command::Sweep(args) => {
            let outcome = commands::sweep(&args)?;
            match outcome {
                SweepOutcome::Plan(_) => print!("{outcome}"),
                SweepOutcome::Ran(_) => eprint!("{outcome}"),
            }
            outcome.ran_anything()?;
        }
        Command::Merge(args) => {
            eprint!(
                "{}",
                hyperscale::record::merge_runs(&args.dirs, &args.out)?.describe()
            );
        }
        Command::TrainDms(args) => print!("{}", commands::train_dms(&args, note)?),
        Command::EvalDms(args) => {
            let outcome = commands::eval_dms(&args, note)?;
            if args.json {
                println!("{}", serde_json::to_string(&outcome)?);
            } else {
                println!("{outcome}");
            }
        }
        #[cfg(feature = "report")]
        Command::Report(args) => {
            let written = commands::report(&args)?;
            for w in written.warnings() {
                eprintln!("warning: {w}");
            }
            eprintln!("{written}");
        }
        // Exit code: 0 pass, 1 regression, 2 incomparable (or an error).
        #[cfg(feature = "report")]
        Command::Compare(args) => match commands::compare(&args) {
            Ok(outcome) => {
                print!("{outcome}");
                return Ok(ExitCode::from(outcome.exit_code()));
            }
            Err(e) => {
                eprintln!("error: {}", hyperscale::error_chain(&e));
                return Ok(ExitCode::from(2));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    use tracing_subscriber::filter::{EnvFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    let is_progress =
        |m: &tracing::Metadata<'_>| m.target() == hyperscale::sweep::progress::PROGRESS_TARGET;
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let notes = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(env)
        .with_filter(filter_fn(move |m| !is_progress(m)));
    let progress = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(is_progress));
    tracing_subscriber::registry()
        .with(notes)
        .with(progress)
        .init();
}
