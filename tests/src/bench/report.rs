//! The table every suite prints, and its JSON twin.

use std::{fs, path::PathBuf};

use serde_json::{Map, Value};

/// Rows of named columns, printed aligned and saved as JSON.
#[derive(Debug)]
pub struct Table {
    title: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.columns.len(),
            "row width must match the columns of {}",
            self.title
        );
        self.rows.push(cells);
    }

    /// A line printed under the table (machine, method, caveats).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = format!("## {}\n{}\n", self.title, line(&self.columns));
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        for n in &self.notes {
            out.push_str(&format!("- {n}\n"));
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                Value::Object(
                    self.columns
                        .iter()
                        .cloned()
                        .zip(r.iter().cloned().map(Value::String))
                        .collect::<Map<_, _>>(),
                )
            })
            .collect();
        serde_json::json!({ "title": self.title, "rows": rows, "notes": self.notes })
    }

    /// Prints the table and writes target/bench/<suite>.json (all tables of
    /// the suite, appended in order).
    pub fn emit(&self, suite: &str) -> anyhow::Result<()> {
        println!("{}", self.render());
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{suite}.json"));
        let mut all: Vec<Value> = fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        all.retain(|t| t["title"] != Value::String(self.title.clone()));
        all.push(self.to_json());
        fs::write(&path, serde_json::to_string_pretty(&all)?)?;
        Ok(())
    }
}
