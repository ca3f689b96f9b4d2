//! `scopewatch sql`: SQL over the history store (DataFusion), read-only.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use super::input_args::{InputArgs, InputFormatArg};
use super::output::Output;
use super::Outcome;
use crate::ingest::{DeadLetterWriter, IngestOptions, Ingestor, OwnOutputs, SkippedFile, Source};
use crate::sql::history::{write_dead_letters, DataLocation, HistoryWriter};
use crate::sql::output::{OutputFormat, ResultWriter};
use crate::sql::session::{open_location, plan, read_only_statements, SqlError};

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// History store written by `scopewatch detect` (tables access, tokens, alerts,
    /// dead_letter, baseline_*): a directory or `s3://bucket/prefix`, read in place.
    #[arg(long, value_name = "DIR|URL", default_value = super::defaults::DATA_DIR, value_parser = DataLocation::parse)]
    pub data: DataLocation,

    /// Query archived logs directly instead of a history store: the files are read through
    /// the event parser into temporary `access`/`tokens`/`dead_letter` tables
    /// (FORMAT[+MAPPING]:PATH reads one in its own format, as in detect).
    #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with = "data")]
    pub input: Vec<String>,

    /// Run this SQL (several statements separated by `;` run in order).
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        conflicts_with = "file"
    )]
    pub command: Option<String>,

    /// Run the SQL in this file (e.g. one of `queries/`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Result format.
    #[arg(long = "output-format", alias = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Write results to FILE instead of stdout (required for parquet).
    #[arg(long = "out-file", alias = "out", value_name = "FILE")]
    pub out: Option<String>,

    /// Memory for the query's operators (bytes, or with K, M, G: 512M, 2G). Beyond it, sorts,
    /// aggregations and joins spill to the temporary directory; an operator that cannot spill
    /// stops the query with "Resources exhausted" (exit 2), never the host.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub memory_limit: usize,

    /// Format of the --input files (auto-detected per record unless given).
    #[arg(long, value_enum, default_value_t = InputFormatArg::Auto)]
    pub input_format: InputFormatArg,

    #[command(flatten)]
    pub input_options: InputArgs,

    /// The key of a pseudonymised store: registers `pseudonym(id)`, so a lookup reads
    /// `WHERE patient = pseudonym('pat-00123')` (with --input, the temporary store is
    /// pseudonymised too).
    #[command(flatten)]
    pub pseudonym: super::pseudonym_args::PseudonymArgs,
}

/// `1073741824`, `512M`, `2G`, `64k` → bytes (at least 1 MiB: less cannot run a query).
pub(super) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "{text}: expected bytes or a size such as 512M or 2G"
            ))
        }
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text}: expected bytes or a size such as 512M or 2G"))?;
    let bytes = n
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("{text}: too large"))?;
    if bytes < 1 << 20 {
        return Err(format!("{text}: at least 1M"));
    }
    Ok(bytes)
}

pub fn run(args: SqlArgs) -> anyhow::Result<Outcome> {
    if args.output == OutputFormat::Parquet && args.out.is_none() {
        anyhow::bail!("--output-format parquet needs --out-file FILE");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let pseudonymizer = args.pseudonym.load()?;
    // Holds the temporary store of --input until the end of the run.
    let mut _scratch = None;
    let data = if args.input.is_empty() {
        if let Some(dir) = args.data.local().filter(|dir| !dir.exists()) {
            anyhow::bail!(
                "{} does not exist: run `scopewatch detect … --data {}` first, or query files directly with --input",
                dir.display(),
                dir.display()
            );
        }
        args.data.clone()
    } else {
        let dir = tempfile::tempdir().context("creating a temporary store")?;
        let (options, sources, skipped) = args.input_options.resolve(
            &args.input,
            args.input_format,
            &OwnOutputs::new(args.out.as_slice()),
        )?;
        load_inputs(
            (sources, skipped),
            dir.path(),
            options,
            args.input_options.fhir_base.as_deref(),
            pseudonymizer.clone(),
        )?;
        let path = dir.path().to_path_buf();
        _scratch = Some(dir);
        DataLocation::Local(path)
    };
    let ctx = runtime.block_on(open_location(&data, args.memory_limit))?;
    if let Some(p) = pseudonymizer {
        crate::sql::udf::register_pseudonym(&ctx, p);
    }
    let script = match (&args.command, &args.file) {
        (Some(sql), _) => Some(sql.clone()),
        (None, Some(file)) => Some(
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        ),
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .context("reading SQL from stdin")?;
            Some(sql)
        }
        (None, None) => None,
    };
    match script {
        Some(sql) => {
            runtime.block_on(run_script(&ctx, &sql, &args))?;
            Ok(Outcome::Clean)
        }
        None => repl(&runtime, &ctx, &args),
    }
}

/// Reads archived NDJSON into a temporary history store.
fn load_inputs(
    (sources, skipped): (Vec<Source>, Vec<SkippedFile>),
    dir: &Path,
    options: IngestOptions,
    fhir_base: Option<&str>,
    pseudonymizer: Option<crate::sql::history::Pseudonymizer>,
) -> anyhow::Result<()> {
    let keep_raw = pseudonymizer.is_none();
    let dead_letter_path = dir.join("dead-letter.ndjson");
    let file = std::fs::File::create(&dead_letter_path)
        .with_context(|| format!("creating {}", dead_letter_path.display()))?;
    let mut ingestor = Ingestor::new(
        options,
        DeadLetterWriter::new(Box::new(std::io::BufWriter::new(file))),
    );
    ingestor.skip_files(skipped);
    let mut writer = HistoryWriter::new(dir, "input", fhir_base).with_pseudonymizer(pseudonymizer);
    let mut failed = None;
    for source in &sources {
        ingestor.ingest(source, &mut |event, _| {
            if failed.is_none() {
                if let Err(e) = writer.add(&event) {
                    failed = Some(e);
                }
            }
        })?;
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    writer.finish()?;
    let summary = ingestor.finish()?;
    write_dead_letters(
        dir,
        "input",
        crate::event::Timestamp::now(),
        &dead_letter_path,
        keep_raw,
    )?;
    eprint!("{}", summary.render_table());
    Ok(())
}

async fn run_script(ctx: &SessionContext, sql: &str, args: &SqlArgs) -> anyhow::Result<()> {
    let statements = read_only_statements(sql)?;
    if statements.is_empty() {
        anyhow::bail!("no SQL statement given");
    }
    for statement in statements {
        run_statement(ctx, &statement, args).await?;
    }
    Ok(())
}

/// Plans and runs one statement, streaming its result to the output; reports rows and time.
async fn run_statement(ctx: &SessionContext, sql: &str, args: &SqlArgs) -> Result<(), SqlError> {
    let started = Instant::now();
    let df = plan(ctx, sql).await?;
    let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let out: Box<dyn Write + Send> = Box::new(Output::new(args.out.as_deref().unwrap_or("-")));
    let mut writer = ResultWriter::new(args.output, out, &schema).map_err(SqlError::Query)?;
    let mut stream = df.execute_stream().await?;
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        writer.write(&batch).map_err(SqlError::Query)?;
    }
    writer.finish(&schema).map_err(SqlError::Query)?;
    eprintln!(
        "({rows} row{}, {:.3} s)",
        if rows == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Interactive use: line editing and in-memory history (not saved to disk: queries may name
/// patients). A statement ends with `;`; `\q` or Ctrl-D quits.
fn repl(
    runtime: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    args: &SqlArgs,
) -> anyhow::Result<Outcome> {
    let mut editor = rustyline::DefaultEditor::new().context("starting the line editor")?;
    eprintln!("scopewatch sql — tables: access, tokens, alerts, dead_letter, baseline_*; end statements with ';', \\q to quit");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "sql> " } else { "  -> " };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && line.trim() == "\\q" {
                    break;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if line.trim_end().ends_with(';') {
                    let _ = editor.add_history_entry(buffer.trim());
                    if let Err(e) = runtime.block_on(run_script(ctx, &buffer, args)) {
                        eprintln!("error: {e:#}");
                    }
                    buffer.clear();
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => buffer.clear(),
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading input"),
        }
    }
    Ok(Outcome::Clean)
}
