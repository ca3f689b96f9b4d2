//! Writing query results as they stream: a text table, CSV, a JSON array, NDJSON or Parquet.
//! Nothing collects the whole result: the table format prints every `TABLE_ROWS` rows as one
//! table, the others write each batch as it arrives.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;

/// Rows printed per text table.
const TABLE_ROWS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
    Parquet,
}

type BoxWrite = Box<dyn Write + Send>;

pub enum ResultWriter {
    Table {
        out: BoxWrite,
        pending: Vec<RecordBatch>,
        rows: usize,
        printed: bool,
    },
    Csv(datafusion::arrow::csv::Writer<BoxWrite>),
    Json(datafusion::arrow::json::ArrayWriter<BoxWrite>),
    Ndjson(datafusion::arrow::json::LineDelimitedWriter<BoxWrite>),
    Parquet(ArrowWriter<BoxWrite>),
}

type Result<T> = std::result::Result<T, String>;

impl ResultWriter {
    pub fn new(format: OutputFormat, out: BoxWrite, schema: &SchemaRef) -> Result<ResultWriter> {
        Ok(match format {
            OutputFormat::Table => ResultWriter::Table {
                out,
                pending: Vec::new(),
                rows: 0,
                printed: false,
            },
            OutputFormat::Csv => ResultWriter::Csv(datafusion::arrow::csv::Writer::new(out)),
            // Nulls are written as null so every row has every column.
            OutputFormat::Json => ResultWriter::Json(
                datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out),
            ),
            OutputFormat::Ndjson => ResultWriter::Ndjson(
                datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build(out),
            ),
            OutputFormat::Parquet => ResultWriter::Parquet(
                ArrowWriter::try_new(out, schema.clone(), None).map_err(|e| e.to_string())?,
            ),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        match self {
            ResultWriter::Table {
                out,
                pending,
                rows,
                printed,
            } => {
                *rows += batch.num_rows();
                pending.push(batch.clone());
                if *rows >= TABLE_ROWS {
                    print_table(out, pending).map_err(|x| e(&x))?;
                    *rows = 0;
                    *printed = true;
                }
                Ok(())
            }
            ResultWriter::Csv(w) => w.write(batch).map_err(|x| e(&x)),
            ResultWriter::Json(w) => w.write(batch).map_err(|x| e(&x)),
            ResultWriter::Ndjson(w) => w.write(batch).map_err(|x| e(&x)),
            ResultWriter::Parquet(w) => w.write(batch).map_err(|x| e(&x)),
        }
    }

    /// Ends the output (closing bracket, Parquet footer) and flushes it.
    pub fn finish(self, schema: &SchemaRef) -> Result<()> {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        match self {
            ResultWriter::Table {
                mut out,
                mut pending,
                printed,
                ..
            } => {
                if pending.is_empty() && !printed {
                    // An empty result still shows its columns.
                    pending.push(RecordBatch::new_empty(schema.clone()));
                }
                if !pending.is_empty() {
                    print_table(&mut out, &mut pending).map_err(|x| e(&x))?;
                }
                out.flush().map_err(|x| e(&x))
            }
            ResultWriter::Csv(w) => w.into_inner().flush().map_err(|x| e(&x)),
            ResultWriter::Json(mut w) => {
                w.finish().map_err(|x| e(&x))?;
                w.into_inner().flush().map_err(|x| e(&x))
            }
            ResultWriter::Ndjson(mut w) => {
                w.finish().map_err(|x| e(&x))?;
                w.into_inner().flush().map_err(|x| e(&x))
            }
            ResultWriter::Parquet(w) => {
                let mut out = w.into_inner().map_err(|x| e(&x))?;
                out.flush().map_err(|x| e(&x))
            }
        }
    }
}

fn print_table(out: &mut BoxWrite, pending: &mut Vec<RecordBatch>) -> std::io::Result<()> {
    let table = pretty_format_batches(pending).map_err(std::io::Error::other)?;
    pending.clear();
    writeln!(out, "{table}")
}
