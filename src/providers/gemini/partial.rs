//! Vertex's streamed function-call arguments (`functionCall.partialArgs[{jsonPath, …}]`),
//! assembled into one arguments object.
//!
//! Everything here is bounded, whatever the vendor sends: a path has at most
//! [`MAX_PATH_DEPTH`] segments, an array index is at most [`MAX_PARTIAL_INDEX`], and one call's
//! arguments grow by at most [`MAX_ARGS_BYTES`]. Past a bound the event is an
//! [`ErrorKind::Decode`] error, never a deep recursion or a huge allocation.

use serde_json::{Map, Value};

use super::wire::WirePartialArg;
use crate::types::{Error, ErrorKind};

/// Most segments a `partialArgs` path may have (`$.a.b[0]` has three). Deeper paths would
/// build values whose drop and serialisation recurse once per level.
pub(super) const MAX_PATH_DEPTH: usize = 64;

/// Largest array index a `partialArgs` path may use. An index makes the array that long, so
/// a path of big indexes would allocate without bound.
pub(super) const MAX_PARTIAL_INDEX: usize = 1024;

/// Most bytes the streamed pieces of one call's arguments may add (string text, keys, and a
/// slot's worth for every value created): 4 MiB.
pub(super) const MAX_ARGS_BYTES: usize = 4 << 20;

/// What one created value slot counts for against [`MAX_ARGS_BYTES`] (the size of a
/// `serde_json::Value`).
const SLOT_BYTES: usize = std::mem::size_of::<Value>();

/// How much of a path an error shows.
const SHOWN_PATH_CHARS: usize = 80;

#[derive(Debug, PartialEq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A path as an error may show it: its first [`SHOWN_PATH_CHARS`] characters.
fn shown(path: &str) -> String {
    match path.char_indices().nth(SHOWN_PATH_CHARS) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &path[..cut], path.len()),
        None => format!("{path:?}"),
    }
}

/// Parses a partial-argument path: `$.a.b[0]['c d']`, at most [`MAX_PATH_DEPTH`] segments
/// and indexes up to [`MAX_PARTIAL_INDEX`].
pub(super) fn parse_path(path: &str) -> Result<Vec<Seg>, Error> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Decode,
            format!("unsupported partialArgs jsonPath {}: {why}", shown(path)),
        )
    };
    let mut rest = path
        .strip_prefix('$')
        .ok_or_else(|| bad("it does not start with `$`"))?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if segs.len() == MAX_PATH_DEPTH {
            return Err(bad(&format!("deeper than {MAX_PATH_DEPTH} levels")));
        }
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad("an empty key"));
            }
            segs.push(Seg::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            if let Some(q) = r.strip_prefix('\'').or_else(|| r.strip_prefix('"')) {
                let quote = if r.starts_with('\'') { "']" } else { "\"]" };
                let end = q.find(quote).ok_or_else(|| bad("an unclosed quote"))?;
                segs.push(Seg::Key(q[..end].to_owned()));
                rest = &q[end + 2..];
            } else {
                let end = r.find(']').ok_or_else(|| bad("an unclosed `[`"))?;
                let n: usize = r[..end].parse().map_err(|_| bad("a bad index"))?;
                if n > MAX_PARTIAL_INDEX {
                    return Err(bad(&format!("an index above {MAX_PARTIAL_INDEX}")));
                }
                segs.push(Seg::Index(n));
                rest = &r[end + 1..];
            }
        } else {
            return Err(bad("a segment that is neither `.key` nor `[…]`"));
        }
    }
    Ok(segs)
}

/// Applies Vertex `partialArgs` to the arguments object. A string value at a path that already
/// holds a string continues it; any other value replaces what is there. `grown` counts the
/// bytes the call's arguments grew by so far, against [`MAX_ARGS_BYTES`].
pub(super) fn apply_partial_args(
    args: &mut Value,
    partial: &[WirePartialArg],
    grown: &mut usize,
) -> Result<(), Error> {
    for pa in partial {
        let value = if let Some(s) = &pa.string_value {
            Value::String(s.clone())
        } else if let Some(n) = &pa.number_value {
            Value::Number(n.clone())
        } else if let Some(b) = pa.bool_value {
            Value::Bool(b)
        } else if pa.null_value.is_some() {
            Value::Null
        } else {
            continue; // a piece without a value (only `willContinue`)
        };
        let path = parse_path(&pa.json_path)?;
        if path.is_empty() {
            return Err(Error::new(
                ErrorKind::Decode,
                "partialArgs value for the whole arguments object",
            ));
        }
        let slot = slot_at(args, &path, &pa.json_path, grown)?;
        let text = match &value {
            Value::String(s) => s.len(),
            _ => 0,
        };
        charge(grown, text, &pa.json_path)?;
        match (slot, value) {
            (Value::String(existing), Value::String(more)) => existing.push_str(&more),
            (slot, value) => *slot = value,
        }
    }
    Ok(())
}

/// Adds `bytes` to `grown`, or fails when that passes [`MAX_ARGS_BYTES`].
fn charge(grown: &mut usize, bytes: usize, raw: &str) -> Result<(), Error> {
    let total = grown.saturating_add(bytes);
    if total > MAX_ARGS_BYTES {
        return Err(Error::new(
            ErrorKind::Decode,
            format!(
                "streamed function-call arguments past {MAX_ARGS_BYTES} bytes (at partialArgs \
                 path {})",
                shown(raw)
            ),
        ));
    }
    *grown = total;
    Ok(())
}

/// The value at `path` inside `root`, creating objects, arrays and `null` slots on the way
/// (each counted in `grown`). Iterative: the path's length bounds the work, not the stack.
fn slot_at<'a>(
    root: &'a mut Value,
    path: &[Seg],
    raw: &str,
    grown: &mut usize,
) -> Result<&'a mut Value, Error> {
    let conflict = || {
        Error::new(
            ErrorKind::Decode,
            format!(
                "partialArgs path {} conflicts with the arguments so far",
                shown(raw)
            ),
        )
    };
    let mut cur = root;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Map::new());
                }
                let Value::Object(map) = cur else {
                    return Err(conflict());
                };
                if !map.contains_key(k) {
                    charge(grown, k.len().saturating_add(SLOT_BYTES), raw)?;
                }
                cur = map.entry(k.clone()).or_insert(Value::Null);
            }
            Seg::Index(i) => {
                if cur.is_null() {
                    *cur = Value::Array(Vec::new());
                }
                let Value::Array(items) = cur else {
                    return Err(conflict());
                };
                if items.len() <= *i {
                    let new = (*i + 1 - items.len()).saturating_mul(SLOT_BYTES);
                    charge(grown, new, raw)?;
                    items.resize(*i + 1, Value::Null);
                }
                let Some(slot) = items.get_mut(*i) else {
                    return Err(conflict());
                };
                cur = slot;
            }
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(path: &str, s: &str) -> WirePartialArg {
        WirePartialArg {
            json_path: path.to_owned(),
            string_value: Some(s.to_owned()),
            number_value: None,
            bool_value: None,
            null_value: None,
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("$.recipe.ingredients[3].name").expect("path"),
            vec![
                Seg::Key("recipe".into()),
                Seg::Key("ingredients".into()),
                Seg::Index(3),
                Seg::Key("name".into())
            ]
        );
        assert_eq!(
            parse_path("$['a b'][\"c\"]").expect("path"),
            vec![Seg::Key("a b".into()), Seg::Key("c".into())]
        );
        for bad in [
            "a.b",
            "$..a",
            "$[x]",
            "$[1",
            "$.a[99999999]",
            "$x",
            "$[1025]",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
        assert!(parse_path("$[1024]").is_ok());
    }

    #[test]
    fn depth_is_bounded_and_errors_show_a_bounded_path() {
        let at_bound = format!("${}", ".a".repeat(MAX_PATH_DEPTH));
        assert_eq!(parse_path(&at_bound).expect("at the bound").len(), 64);
        let too_deep = format!("${}", ".a".repeat(MAX_PATH_DEPTH + 1));
        let e = parse_path(&too_deep).expect_err("past the bound");
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("deeper than 64"), "{e}");
        let huge = format!("${}", ".a".repeat(200_000));
        let e = parse_path(&huge).expect_err("huge");
        assert!(e.message().len() < 300, "{}", e.message().len());
    }

    #[test]
    fn growth_is_bounded() {
        let mut args = Value::Object(Map::new());
        let mut grown = 0;
        let big = "x".repeat(1 << 20);
        for _ in 0..3 {
            apply_partial_args(&mut args, &[piece("$.s", &big)], &mut grown).expect("fits");
        }
        let e = apply_partial_args(&mut args, &[piece("$.s", &big)], &mut grown)
            .expect_err("past 4 MiB");
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(e.message().contains("past 4194304 bytes"), "{e}");

        // Arrays count their slots: three paths of 63 levels of the largest index pass it
        // (each makes 63 arrays of 1,025 slots, about 2 MB).
        let mut args = Value::Object(Map::new());
        let mut grown = 0;
        let deep = "[1024]".repeat(MAX_PATH_DEPTH - 1);
        for key in ["a", "b"] {
            apply_partial_args(
                &mut args,
                &[piece(&format!("$.{key}{deep}"), "v")],
                &mut grown,
            )
            .expect("two fit");
        }
        let e = apply_partial_args(&mut args, &[piece(&format!("$.c{deep}"), "v")], &mut grown)
            .expect_err("three do not");
        assert!(e.message().contains("past 4194304 bytes"), "{e}");
    }
}
