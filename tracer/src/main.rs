//! `tracer`: thin entry point; see the library for everything it does.
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use tracer::cli::{Cli, Command, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli.check() {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    init_logging(cli.verbose);
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Each error type here puts its cause in its own message; printing
            // the source chain as well would repeat it.
            eprintln!("tracer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand, or without one the tracing session. Returns the exit
/// code: 0; with `-- COMMAND` the command's; 1 when `tracer check` failed.
fn dispatch(cli: &Cli) -> anyhow::Result<u8> {
    let Some(command) = &cli.command else {
        return run::trace(cli);
    };
    match command {
        Command::Bench(args) => run::bench(args)?,
        Command::Check(args) => return Ok(if run::check(args)? { 0 } else { 1 }),
        Command::PingPong(args) => run::ping_pong(args)?,
        Command::Floor(args) => run::floor(args)?,
        Command::BpfStats => run::bpf_stats()?,
        Command::Generate { dir } => {
            for path in tracer::cli::generate::generate(dir)? {
                println!("{}", path.display());
            }
        }
        Command::SoakLoad(args) => run::soak_load(args)?,
        Command::Scenario(args) => run::scenario(args)?,
        Command::Churn(args) => run::churn(args)?,
    }
    Ok(0)
}

/// Warnings and errors (kernel-side ones included) always; more with -v.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_target(false)
        .init();
}
