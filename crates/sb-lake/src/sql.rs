//! `switchboard sql`: DataFusion over the committed files of every dataset.

use std::io::Write;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::SessionContext;

use crate::{Lake, LakeError, schema};

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row (JSON lines).
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown format `{other}`, expected table, csv or json")),
        }
    }
}

fn sql_err(e: impl std::fmt::Display) -> LakeError {
    LakeError::Sql(e.to_string())
}

impl Lake {
    /// A DataFusion session with every dataset registered as a table over its committed
    /// files only (a commit in progress is invisible). Known datasets without data are
    /// registered empty, so queries on them work from the start.
    pub async fn session(&self) -> Result<SessionContext, LakeError> {
        let ctx = SessionContext::new();
        let snapshot = self.snapshot()?;
        for (name, schema) in schema::known() {
            if !snapshot.files.contains_key(name) {
                let empty = MemTable::try_new(schema, vec![vec![]]).map_err(sql_err)?;
                ctx.register_table(name, Arc::new(empty)).map_err(sql_err)?;
            }
        }
        for (dataset, files) in &snapshot.files {
            let urls = files
                .iter()
                .map(|f| ListingTableUrl::parse(self.root().join(&f.path).to_string_lossy()).map_err(sql_err))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options);
            let config = match schema::known().into_iter().find(|(n, _)| n == dataset) {
                Some((_, schema)) => config.with_schema(schema),
                None => config.infer_schema(&ctx.state()).await.map_err(sql_err)?,
            };
            let table = ListingTable::try_new(config).map_err(sql_err)?;
            ctx.register_table(dataset.as_str(), Arc::new(table)).map_err(sql_err)?;
        }
        Ok(ctx)
    }
}

/// Runs `sql` over the lake and writes the result to `out` in `format`; returns the row count.
pub async fn run_sql(lake: &Lake, sql: &str, format: OutputFormat, out: &mut dyn Write) -> Result<usize, LakeError> {
    let ctx = lake.session().await?;
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.map_err(sql_err)?.collect().await.map_err(sql_err)?;
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let io = |e: std::io::Error| LakeError::io("cannot write", std::path::Path::new("<stdout>"), e);
    match format {
        OutputFormat::Table => {
            let text = arrow::util::pretty::pretty_format_batches(&batches).map_err(sql_err)?;
            writeln!(out, "{text}").map_err(io)?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            for b in &batches {
                w.write(b).map_err(sql_err)?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in &batches {
                w.write(b).map_err(sql_err)?;
            }
            w.finish().map_err(sql_err)?;
        }
    }
    Ok(rows)
}
