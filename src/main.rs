//! The nncheck command line: the frozen-model report (default), `verify` (the
//! battery over generated configurations) and `conform` (the scoreboard of
//! every implementation compiled in).

use clap::{Parser, Subcommand};
use nncheck::scenario::{self, ScenarioConfig};
use std::process::ExitCode;

/// Answers "in a frozen model, are dropout layers still active during training?"
/// with measured evidence, and checks the invariants behind the answer.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    report: ReportArgs,
}

#[derive(clap::Args, Debug, Clone)]
struct ReportArgs {
    /// Seed for data, initialisers, dropout masks and shuffles (same seed, same report).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Dropout rate of the frozen models' dropout layers, in [0, 1).
    #[arg(long, default_value_t = 0.5)]
    rate: f64,
    /// Epochs of fitting the joined model_AB.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The frozen-model scenario and its verification report (the default).
    Report(ReportArgs),
    /// Runs the whole battery of invariant checks on generated configurations;
    /// exits 1 if any check fails. Use it to gate CI on these invariants.
    Verify(VerifyArgs),
    /// Runs the same invariants against every implementation compiled in
    /// (nncheck, and candle-nn and burn with their cargo features) and prints a
    /// scoreboard: one row per invariant, one column per framework. Exits 1 only
    /// if nncheck's own column fails a row; another framework's verdicts are
    /// findings.
    Conform(ConformArgs),
    /// Reads a saved Keras 3 model (.keras) and says, layer by layer, what fit and
    /// predict will do to it, ending with the answer for that model; --audit
    /// loads it into nncheck's core, fits it and proves the answer. Exits 1 if
    /// the audit fails, 2 if the file cannot be read or the audit cannot run.
    Inspect(InspectArgs),
    /// Prints the table of every record the batteries produce (what it holds
    /// a subject to, how it judges, what it needs, its power), as Markdown:
    /// docs/INVARIANTS.md is this output.
    Invariants,
}

#[derive(clap::Args, Debug, Clone)]
struct ConformArgs {
    /// Seed of inputs, initialisers and masks (same seed, same scoreboard where a
    /// framework can be seeded).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// False-alarm probability of each statistical check.
    #[arg(long, default_value_t = nncheck::check::stats::DEFAULT_ALPHA)]
    alpha: f64,
    /// Print the scoreboard (rows, cells, every record) as JSON.
    #[arg(long)]
    json: bool,
    /// Print the README's comparison table (Markdown) instead.
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// An expectations file (TOML: subject, check, verdict, reason per entry);
    /// may be given more than once. The run then exits 0 only if every record
    /// has its expected verdict (an unnamed one: PASS or SPEC) and every entry
    /// matched a record, and lists each mismatch.
    #[arg(long, value_name = "FILE")]
    expect: Vec<std::path::PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
struct InspectArgs {
    /// The saved model (`model.save("model.keras")` in Keras 3).
    file: std::path::PathBuf,
    /// Print the layers, weights, answer (and audit) as JSON records.
    #[arg(long)]
    json: bool,
    /// Load the model into nncheck's core, fit it, and verify the answer.
    #[arg(long)]
    audit: bool,
    /// Inputs for the audit's fit (float32 .npy, [batch, the model's input shape]);
    /// standard-normal data of that shape when not given.
    #[arg(long, value_name = "X.npy", requires = "audit")]
    x: Option<std::path::PathBuf>,
    /// Targets for the audit's fit (float32 .npy, [batch, the model's output shape]).
    #[arg(long, value_name = "Y.npy", requires = "x")]
    y: Option<std::path::PathBuf>,
    /// Seed of generated data, initialisers the file does not hold, and masks.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Optimizer steps the audit takes on the whole batch.
    #[arg(long, default_value_t = 5)]
    steps: usize,
}

#[derive(clap::Args, Debug, Clone)]
struct VerifyArgs {
    /// Generated configurations (each alternates a dropout case and a training case).
    #[arg(long, default_value_t = 50)]
    cases: usize,
    /// Seed of the generator of configurations (same seed, same verdicts).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// False-alarm probability of each statistical check.
    #[arg(long, default_value_t = nncheck::check::stats::DEFAULT_ALPHA)]
    alpha: f64,
    /// Print one JSON record per check (schema: nncheck::check::CheckReport) instead of a table.
    #[arg(long)]
    json: bool,
    /// Run only shard k of N (a contiguous block of the cases, for splitting a large
    /// --cases run across machines); the shards' records, joined in order, are the
    /// unsharded run's.
    #[arg(long, default_value = "1/1")]
    shard: nncheck::check::run::verify::Shard,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Report(args)) => report(&args),
        Some(Command::Verify(args)) => verify(&args),
        Some(Command::Conform(args)) => conform(&args),
        Some(Command::Inspect(args)) => inspect(&args),
        Some(Command::Invariants) => {
            use nncheck::check::run::{battery::Batteries, table};
            print!("{}", table::invariants_markdown(&Batteries::default()));
            ExitCode::SUCCESS
        }
        None => report(&cli.report),
    }
}

fn verify(args: &VerifyArgs) -> ExitCode {
    use indicatif::{ProgressBar, ProgressStyle};
    use nncheck::check::run::verify;

    let range = args.shard.range(args.cases);
    if range.is_empty() {
        // A gate that ran nothing must not pass: more shards than cases is a
        // mistake in the job matrix.
        eprintln!(
            "nncheck verify: shard {} of {} cases holds no case; use fewer shards or more cases",
            args.shard, args.cases
        );
        return ExitCode::from(2);
    }
    let bar = ProgressBar::new(range.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} cases {msg}").expect("valid template"),
    );
    let reports = verify::run(args.seed, args.cases, args.alpha, args.shard, |_| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    let failed: Vec<_> = reports.iter().filter(|r| !r.pass).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).expect("serialisable")
        );
    } else {
        let mut names: Vec<&str> = reports.iter().map(|r| r.check.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        println!("{:<38} {:>6} {:>6}", "check", "passed", "failed");
        for name in names {
            let of = |pass: bool| {
                reports
                    .iter()
                    .filter(|r| r.check == name && r.pass == pass)
                    .count()
            };
            println!("{name:<38} {:>6} {:>6}", of(true), of(false));
        }
        for r in &failed {
            println!("{}", r.line());
        }
        println!(
            "\n{} passed, {} failed",
            reports.len() - failed.len(),
            failed.len()
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn conform(args: &ConformArgs) -> ExitCode {
    use nncheck::conform::expect::Expectations;
    use nncheck::conform::{compiled_subjects, Scoreboard, Sweep};
    // Read before the run, so a bad file costs nothing.
    let expectations = match Expectations::load_all(&args.expect) {
        Ok(e) => (!args.expect.is_empty()).then_some(e),
        Err(e) => {
            eprintln!("nncheck conform: {e}");
            return ExitCode::from(2);
        }
    };
    let sweep = Sweep::scoreboard(args.seed, args.alpha);
    // A framework that refuses bad input by panicking is a finding the
    // scoreboard records with the panic's message; the default hook would also
    // print it in the middle of the table.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let board = Scoreboard::run(&compiled_subjects(), &sweep, |name| {
        eprintln!("nncheck conform: running {name}")
    });
    std::panic::set_hook(default_hook);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&board).expect("serialisable")
        );
    } else if args.markdown {
        print!("{}", board.markdown());
    } else {
        print!("{}", board.render());
    }
    if let Some(expectations) = expectations {
        let judged = expectations.judge(
            board
                .records
                .iter()
                .map(|r| (r.subject.as_str(), &r.report)),
            None,
        );
        for line in judged.lines() {
            eprintln!("nncheck conform: {line}");
        }
        eprintln!(
            "nncheck conform: {} records against {} expectations: {}",
            judged.records,
            expectations.len(),
            if judged.met() {
                "every verdict as expected".to_string()
            } else {
                format!(
                    "{} mismatches, {} entries matched nothing",
                    judged.mismatches.len(),
                    judged.unmatched.len()
                )
            }
        );
        return if judged.met() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if board.core_passes_everything() {
        ExitCode::SUCCESS
    } else {
        eprintln!("nncheck conform: nncheck's own column failed a row");
        ExitCode::FAILURE
    }
}

fn report(args: &ReportArgs) -> ExitCode {
    let cfg = ScenarioConfig {
        seed: args.seed,
        rate: args.rate,
        epochs: args.epochs,
        ..ScenarioConfig::default()
    };
    let outcome = match scenario::run(&cfg) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("nncheck: the scenario could not run: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("serialisable")
        );
        return if outcome.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    print!("{}", scenario::render(&cfg, &outcome));
    if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the audit of `inspection`: the model loaded into the core, the data
/// read or generated, the fit judged.
fn run_audit(
    inspection: &nncheck::inspect::Inspection,
    args: &InspectArgs,
) -> nncheck::inspect::Result<nncheck::inspect::audit::AuditReport> {
    use nncheck::inspect::{archive, audit};
    let weights = archive::read_archive(&args.file)?.weights;
    let loaded = audit::load(inspection, &weights, args.seed)?;
    let input = loaded.model.input_shape().to_vec();
    let output = loaded.model.output_shape().to_vec();
    let mut notes = Vec::new();
    let (x, y) = match (&args.x, &args.y) {
        (Some(x), y) => {
            let x = audit::read_npy(x, "x", &input)?;
            let y = match y {
                Some(y) => audit::read_npy(y, "y", &output)?,
                None => {
                    let mut shape = vec![x.shape()[0]];
                    shape.extend(&output);
                    nncheck::tensor::checked_len(&shape).map_err(|e| {
                        nncheck::inspect::InspectError::NotInCore {
                            file: args.file.clone(),
                            path: inspection.model.root.name.clone(),
                            class: inspection.model.root.class.clone(),
                            reason: format!("generated targets of shape {shape:?}: {e}"),
                        }
                    })?;
                    notes.push(format!("targets generated: standard normal {shape:?} (give --y Y.npy for your own)"));
                    audit::generated(&shape, args.seed ^ 1)
                }
            };
            if x.shape()[0] != y.shape()[0] {
                return Err(nncheck::inspect::InspectError::Npy {
                    file: args.y.clone().unwrap_or_default(),
                    reason: format!("{} samples, x has {}", y.shape()[0], x.shape()[0]),
                });
            }
            (x, y)
        }
        (None, _) => {
            let mut xs = vec![64];
            xs.extend(&input);
            let mut ys = vec![64];
            ys.extend(&output);
            // The shapes come from the file: a huge one is refused, not allocated.
            for shape in [&xs, &ys] {
                nncheck::tensor::checked_len(shape).map_err(|e| {
                    nncheck::inspect::InspectError::NotInCore {
                        file: args.file.clone(),
                        path: inspection.model.root.name.clone(),
                        class: inspection.model.root.class.clone(),
                        reason: format!("generated data of shape {shape:?}: {e}"),
                    }
                })?;
            }
            notes.push(format!(
                "data generated: standard normal x {xs:?} and y {ys:?}, seed {} (give --x X.npy --y Y.npy for your own)",
                args.seed
            ));
            (
                audit::generated(&xs, args.seed),
                audit::generated(&ys, args.seed ^ 1),
            )
        }
    };
    let mut report = audit::audit(
        inspection,
        loaded,
        (&x, &y),
        args.steps,
        nncheck::check::stats::DEFAULT_ALPHA,
    )?;
    notes.append(&mut report.notes);
    report.notes = notes;
    Ok(report)
}

fn inspect(args: &InspectArgs) -> ExitCode {
    let inspection = match nncheck::inspect::inspect(&args.file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("nncheck inspect: {e}");
            return ExitCode::from(2);
        }
    };
    let audit = args.audit.then(|| run_audit(&inspection, args));
    if args.json {
        let audit_json = match &audit {
            None => serde_json::Value::Null,
            Some(Ok(r)) => {
                serde_json::json!({"passed": r.passed(), "notes": r.notes, "records": r.records})
            }
            Some(Err(e)) => serde_json::json!({"error": e.to_string()}),
        };
        let out = serde_json::json!({"inspection": inspection, "audit": audit_json});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("plain values serialise")
        );
    } else {
        print!("{}", inspection.render());
        match &audit {
            Some(Ok(r)) => print!("\n{}", r.render()),
            Some(Err(e)) => println!("\naudit not run: {e}"),
            None => {}
        }
    }
    match audit {
        Some(Ok(r)) if !r.passed() => ExitCode::from(1),
        Some(Err(_)) => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    }
}
