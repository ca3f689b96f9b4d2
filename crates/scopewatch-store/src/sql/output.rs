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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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
            ResultWriter::Csv(w) => w.write(&nested_as_json(batch)?).map_err(|x| e(&x)),
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

/// CSV has no lists or structs: such a column is written as one JSON text per cell
/// (`["scope_creep","purpose_drift"]`), a null as an empty cell.
fn nested_as_json(batch: &RecordBatch) -> Result<RecordBatch> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let nested: Vec<usize> = (0..batch.num_columns())
        .filter(|&i| batch.schema().field(i).data_type().is_nested())
        .collect();
    if nested.is_empty() {
        return Ok(batch.clone());
    }
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let only_nested = batch.project(&nested).map_err(|x| e(&x))?;
    let mut lines = Vec::new();
    {
        let mut w = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut lines);
        w.write(&only_nested).map_err(|x| e(&x))?;
        w.finish().map_err(|x| e(&x))?;
    }
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).map_err(|x| e(&x)))
        .collect::<Result<_>>()?;
    let schema = batch.schema();
    let mut fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (i, field) in schema.fields().iter().enumerate() {
        if !nested.contains(&i) {
            fields.push(field.as_ref().clone());
            columns.push(batch.column(i).clone());
            continue;
        }
        let cells: StringArray = rows
            .iter()
            .map(|row| match row.get(field.name()) {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.to_string()),
            })
            .collect();
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(cells));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|x| e(&x))
}

fn print_table(out: &mut BoxWrite, pending: &mut Vec<RecordBatch>) -> std::io::Result<()> {
    let table = pretty_format_batches(pending).map_err(std::io::Error::other)?;
    pending.clear();
    writeln!(out, "{table}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, ListBuilder, StringBuilder};
    use std::sync::Arc;

    /// `queries/alerts_by_severity.sql` returns a list column; CSV writes it as JSON text.
    #[test]
    fn csv_writes_list_columns_as_json_arrays() {
        let mut rules = ListBuilder::new(StringBuilder::new());
        rules.values().append_value("scope_creep");
        rules.values().append_value("purpose_drift");
        rules.append(true);
        rules.append(false);
        let batch = RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![2, 0])) as datafusion::arrow::array::ArrayRef,
            ),
            ("rules", Arc::new(rules.finish())),
        ])
        .expect("batch");
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let schema = batch.schema();
        let mut w = ResultWriter::new(OutputFormat::Csv, Box::new(Shared(buf.clone())), &schema)
            .expect("writer");
        w.write(&batch).expect("write");
        w.finish(&schema).expect("finish");
        let text = String::from_utf8(buf.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(
            text,
            "n,rules\n2,\"[\"\"scope_creep\"\",\"\"purpose_drift\"\"]\"\n0,\n"
        );
    }
}
