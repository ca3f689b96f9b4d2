//! `scopewatch simulate`: write a seeded, labelled multi-app dataset.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use flate2::write::GzEncoder;

use super::Outcome;
use crate::simulate::{simulate, SimConfig};

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Seed: the same seed gives byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Days to simulate from Monday 2024-03-04 (anomalies are injected in weeks 3 and 4).
    #[arg(long, default_value_t = 28)]
    pub days: i64,

    /// Output directory: events.ndjson.gz, labels.ndjson, benign.ndjson, registry.toml.
    #[arg(long = "out-dir", alias = "out", value_name = "DIR")]
    pub out: PathBuf,

    /// Write events.ndjson uncompressed.
    #[arg(long)]
    pub no_gzip: bool,
}

fn create(path: &std::path::Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).with_context(|| {
        format!("cannot create {}", path.display())
    })?))
}

pub fn run(args: SimulateArgs) -> anyhow::Result<Outcome> {
    if args.days < 1 {
        anyhow::bail!("--days must be at least 1");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let sim = simulate(&SimConfig {
        seed: args.seed,
        days: args.days,
    });
    let events_path = args.out.join(if args.no_gzip {
        "events.ndjson"
    } else {
        "events.ndjson.gz"
    });
    let file = create(&events_path)?;
    let mut out: Box<dyn Write> = if args.no_gzip {
        Box::new(file)
    } else {
        // GzEncoder writes mtime 0, so the archive is byte-identical for the same seed.
        Box::new(GzEncoder::new(file, flate2::Compression::best()))
    };
    for e in &sim.events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    let mut labels = create(&args.out.join("labels.ndjson"))?;
    for l in &sim.labels {
        serde_json::to_writer(&mut labels, l)?;
        labels.write_all(b"\n")?;
    }
    labels.flush()?;
    let mut benign = create(&args.out.join("benign.ndjson"))?;
    for b in &sim.benign {
        serde_json::to_writer(&mut benign, b)?;
        benign.write_all(b"\n")?;
    }
    benign.flush()?;
    std::fs::write(args.out.join("registry.toml"), &sim.registry_toml)?;
    eprintln!(
        "wrote {} events, {} labels, {} benign changes to {}",
        sim.events.len(),
        sim.labels.len(),
        sim.benign.len(),
        args.out.display()
    );
    Ok(Outcome::Clean)
}
