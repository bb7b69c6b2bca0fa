//! Training examples from files: JSON Lines and CSV, as `(text, label)` pairs.

use std::path::Path;

use super::{TextClassifier, config};
use crate::types::Error;

/// One line of a JSONL training file.
#[derive(serde::Deserialize)]
struct Line {
    text: String,
    label: String,
}

/// The text of `path`, or a [`Config`](crate::ErrorKind::Config) error naming it.
fn read(path: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| config(format!("{what} {}: {e}", path.display())).with_source(e))
}

/// `e` with the file named.
fn in_file(path: &Path, e: Error) -> Error {
    config(format!(
        "classifier examples {}: {}",
        path.display(),
        e.message()
    ))
}

/// Checks one example: its text and label are not blank.
fn example(at: &str, text: String, label: String) -> Result<(String, String), Error> {
    if label.trim().is_empty() {
        return Err(config(format!("{at}: empty label")));
    }
    if text.trim().is_empty() {
        return Err(config(format!("{at}: empty text")));
    }
    Ok((text, label))
}

impl TextClassifier {
    /// Reads `(text, label)` pairs from JSONL text: one JSON object per line with string
    /// fields `"text"` and `"label"` (other fields are ignored); blank lines are skipped.
    ///
    /// Fails with a [`Config`](crate::ErrorKind::Config) error naming the line (counted from
    /// 1) for a line that is not such an object, or whose text or label is empty.
    pub fn parse_jsonl(jsonl: &str) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for (n, line) in jsonl.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(line).map_err(|e| {
                config(format!(
                    "line {}: expected {{\"text\": \"...\", \"label\": \"...\"}}: {e}",
                    n + 1
                ))
            })?;
            out.push(example(
                &format!("line {}", n + 1),
                parsed.text,
                parsed.label,
            )?);
        }
        Ok(out)
    }

    /// Reads `(text, label)` pairs from CSV text (RFC 4180): a header row naming a `text`
    /// and a `label` column (any order, other columns ignored, names matched without case),
    /// then one example a row. Fields may be quoted (`"…"`, a quote inside written `""`),
    /// and a quoted field may hold commas and line breaks; rows end with `\n` or `\r\n`;
    /// blank lines are skipped.
    ///
    /// Fails with a [`Config`](crate::ErrorKind::Config) error naming the line (counted from
    /// 1, where the row starts) for a header without both columns, a row too short to hold
    /// them, an unterminated quote, or an empty text or label.
    pub fn parse_csv(csv: &str) -> Result<Vec<(String, String)>, Error> {
        let mut rows = CsvRows { rest: csv, line: 1 };
        let Some((_, header)) = rows.next_row()? else {
            return Err(config("line 1: no header row (text, label)"));
        };
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    config(format!(
                        "line 1: the header names no {name:?} column (it has {header:?})"
                    ))
                })
        };
        let (t, l) = (column("text")?, column("label")?);
        let mut out = Vec::new();
        while let Some((line, mut row)) = rows.next_row()? {
            if row.len() == 1 && row.first().is_some_and(|f| f.is_empty()) {
                continue;
            }
            if row.len() <= t.max(l) {
                return Err(config(format!(
                    "line {line}: {} fields, the header has {}",
                    row.len(),
                    header.len()
                )));
            }
            let text = std::mem::take(&mut row[t]);
            let label = std::mem::take(&mut row[l]);
            out.push(example(&format!("line {line}"), text, label)?);
        }
        Ok(out)
    }

    /// Reads `(text, label)` pairs from a JSONL file ([`parse_jsonl`](Self::parse_jsonl)).
    /// Errors name the file; a file that cannot be read is a
    /// [`Config`](crate::ErrorKind::Config) error too.
    pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Vec<(String, String)>, Error> {
        let path = path.as_ref();
        Self::parse_jsonl(&read(path, "classifier examples")?).map_err(|e| in_file(path, e))
    }

    /// Reads `(text, label)` pairs from a CSV file ([`parse_csv`](Self::parse_csv)). Errors
    /// name the file; a file that cannot be read is a [`Config`](crate::ErrorKind::Config)
    /// error too.
    pub fn read_csv(path: impl AsRef<Path>) -> Result<Vec<(String, String)>, Error> {
        let path = path.as_ref();
        Self::parse_csv(&read(path, "classifier examples")?).map_err(|e| in_file(path, e))
    }

    /// Reads examples from a file by its extension: `.csv` as CSV
    /// ([`read_csv`](Self::read_csv)), anything else as JSON Lines
    /// ([`read_jsonl`](Self::read_jsonl)).
    pub fn read_examples(path: impl AsRef<Path>) -> Result<Vec<(String, String)>, Error> {
        let path = path.as_ref();
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if csv {
            Self::read_csv(path)
        } else {
            Self::read_jsonl(path)
        }
    }

    /// Trains a classifier with the default options on JSONL text
    /// ([`parse_jsonl`](Self::parse_jsonl)).
    pub fn from_jsonl_str(jsonl: &str) -> Result<Self, Error> {
        Self::train(Self::parse_jsonl(jsonl)?)
    }

    /// Trains a classifier with the default options on an examples file
    /// ([`read_examples`](Self::read_examples): CSV or JSONL by extension).
    pub fn from_examples_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        Self::train(Self::read_examples(path)?).map_err(|e| in_file(path, e))
    }
}

/// Rows of CSV text.
struct CsvRows<'a> {
    rest: &'a str,
    /// The line the next row starts on.
    line: usize,
}

impl CsvRows<'_> {
    /// The next row's first line and fields; `None` at the end.
    fn next_row(&mut self) -> Result<Option<(usize, Vec<String>)>, Error> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut quoted = false;
        let mut at_field_start = true;
        let mut end = self.rest.len();
        while let Some((i, c)) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek().is_some_and(|&(_, n)| n == '"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        self.line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                '\n' => {
                    self.line += 1;
                    end = i + 1;
                    break;
                }
                '\r' if chars.peek().is_some_and(|&(_, n)| n == '\n') => {}
                _ => {
                    field.push(c);
                    at_field_start = false;
                }
            }
        }
        if quoted {
            return Err(config(format!(
                "line {start}: a quoted field is not closed"
            )));
        }
        fields.push(field);
        self.rest = self.rest.get(end..).unwrap_or("");
        Ok(Some((start, fields)))
    }
}
