//! JSON Schema → the OpenAPI 3.0 subset Gemini accepts in `functionDeclarations[].parameters`
//! and `generationConfig.responseSchema`.
//!
//! Gemini answers 400 `INVALID_ARGUMENT` to schemas that use keywords outside its subset
//! (`$schema`, `$defs`, `$ref`, `additionalProperties`, `const`, `examples`, type arrays…),
//! to non-string `enum`s, to `format`s other than the few it knows, and to `required` names that
//! are not properties. [`clean`] keeps what Gemini accepts and rewrites the rest:
//!
//! | JSON Schema | sent to Gemini |
//! |---|---|
//! | `$ref` to `#/$defs/X` or `#/definitions/X` | the definition inlined (recursive refs: dropped) |
//! | `allOf: [a, b]` | `a` and `b` merged (properties and `required` united) |
//! | `oneOf` | `anyOf` |
//! | `anyOf`/`oneOf` with a `{"type":"null"}` branch | that branch dropped, `nullable: true` |
//! | `type: ["string","null"]` | `type: "string"`, `nullable: true` |
//! | `type: ["string","integer"]` | `anyOf: [{type: string}, {type: integer}]` |
//! | `const: "x"` | `enum: ["x"]` |
//! | `enum`/`const` with non-string values | dropped; the values are listed in `description` |
//! | `format` Gemini does not know for the type | dropped |
//! | `items: [a, b]` (tuple) | `items: {anyOf: [a, b]}` |
//! | no `type` but `properties` / `items` / `enum` | `object` / `array` / `string` |
//! | `required` naming a missing property | that name dropped |
//!
//! Kept: `type`, `nullable`, `format`, `description`, `enum`, `properties`, `required`, `items`,
//! `anyOf`, `minItems`, `maxItems`, `minLength`, `maxLength`, `minProperties`, `maxProperties`,
//! `minimum`, `maximum`, `pattern`, `example`, `propertyOrdering`. Everything else (`title`,
//! `default`, `examples`, `additionalProperties`, `patternProperties`, `unevaluatedProperties`,
//! `exclusiveMinimum`/`exclusiveMaximum`, `multipleOf`, `uniqueItems`, `not`, `if`/`then`/`else`,
//! `$schema`, `$id`, `$comment`, `$defs`/`definitions`, …) is dropped.

use serde_json::{Map, Value};

/// Deepest nesting (and `$ref` inlining) followed; deeper subschemas become `{}`.
const MAX_DEPTH: usize = 48;

/// Keywords copied unchanged when their value has the expected JSON type.
const NUMERIC_KEYWORDS: &[&str] = &[
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
];

/// Cleans `schema` into Gemini's subset (see the module documentation).
pub(crate) fn clean(schema: &Value) -> Value {
    let mut cx = Cx {
        root: schema,
        stack: Vec::new(),
    };
    Value::Object(cx.clean(schema, 0))
}

/// Whether a cleaned schema is an object schema without properties: Gemini rejects such a
/// `parameters` value ("properties: should be non-empty for OBJECT type"), so it is omitted.
pub(crate) fn is_empty_object(schema: &Value) -> bool {
    let Some(obj) = schema.as_object() else {
        return true;
    };
    let no_props = obj
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    let objecty = obj.get("type").is_none_or(|t| t == "object");
    no_props && objecty && !obj.contains_key("anyOf")
}

struct Cx<'a> {
    root: &'a Value,
    /// `$ref`s being inlined, to stop on recursion.
    stack: Vec<String>,
}

impl<'a> Cx<'a> {
    fn clean(&mut self, node: &'a Value, depth: usize) -> Map<String, Value> {
        let Some(obj) = node.as_object() else {
            // `true` / `false` / garbage: an unconstrained schema.
            return Map::new();
        };
        if depth > MAX_DEPTH {
            return Map::new();
        }
        let mut out = Map::new();

        // `$ref`: inline the definition, siblings (e.g. `description`) taking precedence.
        // Unresolvable or recursive refs are dropped, siblings kept.
        if let Some(r) = obj.get("$ref").and_then(Value::as_str)
            && let Some(target) = self.resolve(r)
            && !self.stack.iter().any(|s| s == r)
        {
            self.stack.push(r.to_owned());
            out = self.clean(target, depth + 1);
            self.stack.pop();
        }

        // `allOf`: merged into this node.
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            for sub in all {
                let cleaned = self.clean(sub, depth + 1);
                merge_into(&mut out, cleaned);
            }
        }

        let mut nullable = false;
        let mut extra_description: Option<String> = None;

        for (key, value) in obj {
            match key.as_str() {
                "type" => match value {
                    Value::String(t) if t == "null" => nullable = true,
                    Value::String(t) => {
                        out.insert("type".into(), Value::String(t.clone()));
                    }
                    Value::Array(types) => {
                        let mut non_null: Vec<&str> = Vec::new();
                        for t in types.iter().filter_map(Value::as_str) {
                            if t == "null" {
                                nullable = true;
                            } else if !non_null.contains(&t) {
                                non_null.push(t);
                            }
                        }
                        match non_null.as_slice() {
                            [] => {}
                            [one] => {
                                out.insert("type".into(), Value::String((*one).to_owned()));
                            }
                            many => {
                                let branches = many
                                    .iter()
                                    .map(|t| {
                                        let mut m = Map::new();
                                        m.insert("type".into(), Value::String((*t).to_owned()));
                                        Value::Object(m)
                                    })
                                    .collect();
                                out.insert("anyOf".into(), Value::Array(branches));
                            }
                        }
                    }
                    _ => {}
                },
                "nullable" if value.as_bool() == Some(true) => nullable = true,
                "description" | "pattern" => {
                    if let Value::String(s) = value {
                        out.insert(key.clone(), Value::String(s.clone()));
                    }
                }
                "example" => {
                    out.insert(key.clone(), value.clone());
                }
                "format" => {
                    if let Value::String(s) = value {
                        out.insert(key.clone(), Value::String(s.clone()));
                    }
                }
                "enum" => {
                    if let Value::Array(values) = value {
                        if values.iter().all(Value::is_string) {
                            if !values.is_empty() {
                                out.insert("enum".into(), value.clone());
                            }
                        } else {
                            let (strings, others): (Vec<&Value>, Vec<&Value>) =
                                values.iter().partition(|v| v.is_string() || v.is_null());
                            if others.is_empty() {
                                // Only strings and null: a nullable string enum.
                                let kept: Vec<Value> = strings
                                    .into_iter()
                                    .filter(|v| v.is_string())
                                    .cloned()
                                    .collect();
                                nullable = true;
                                if !kept.is_empty() {
                                    out.insert("enum".into(), Value::Array(kept));
                                }
                            } else {
                                extra_description = Some(allowed_values(values));
                            }
                        }
                    }
                }
                "const" => match value {
                    Value::String(_) => {
                        out.insert("enum".into(), Value::Array(vec![value.clone()]));
                    }
                    Value::Null => nullable = true,
                    other => {
                        extra_description = Some(allowed_values(std::slice::from_ref(other)));
                    }
                },
                "properties" => {
                    if let Value::Object(props) = value {
                        let mut cleaned = Map::new();
                        for (name, sub) in props {
                            cleaned.insert(name.clone(), Value::Object(self.clean(sub, depth + 1)));
                        }
                        match out.get_mut("properties") {
                            Some(Value::Object(existing)) => existing.extend(cleaned),
                            _ => {
                                out.insert("properties".into(), Value::Object(cleaned));
                            }
                        }
                    }
                }
                "required" => {
                    if let Value::Array(names) = value {
                        let names: Vec<Value> =
                            names.iter().filter(|n| n.is_string()).cloned().collect();
                        union_required(&mut out, names);
                    }
                }
                "items" => {
                    let cleaned = match value {
                        Value::Array(tuple) => {
                            let mut branches: Vec<Value> = tuple
                                .iter()
                                .map(|s| Value::Object(self.clean(s, depth + 1)))
                                .collect();
                            match branches.len() {
                                0 => Map::new(),
                                1 => match branches.pop() {
                                    Some(Value::Object(m)) => m,
                                    _ => Map::new(),
                                },
                                _ => {
                                    let mut m = Map::new();
                                    m.insert("anyOf".into(), Value::Array(branches));
                                    m
                                }
                            }
                        }
                        other => self.clean(other, depth + 1),
                    };
                    out.insert("items".into(), Value::Object(cleaned));
                }
                "anyOf" | "oneOf" => {
                    if let Value::Array(branches) = value {
                        let mut kept = Vec::new();
                        for b in branches {
                            if is_null_schema(b) {
                                nullable = true;
                            } else {
                                kept.push(self.clean(b, depth + 1));
                            }
                        }
                        match kept.len() {
                            0 => {}
                            1 => {
                                if let Some(only) = kept.pop() {
                                    // One real branch: its keywords fill what this node lacks.
                                    for (k, v) in only {
                                        out.entry(k).or_insert(v);
                                    }
                                }
                            }
                            _ => {
                                let mut all: Vec<Value> = match out.remove("anyOf") {
                                    Some(Value::Array(a)) => a,
                                    _ => Vec::new(),
                                };
                                all.extend(kept.into_iter().map(Value::Object));
                                out.insert("anyOf".into(), Value::Array(all));
                            }
                        }
                    }
                }
                "propertyOrdering" => {
                    if let Value::Array(names) = value
                        && names.iter().all(Value::is_string)
                    {
                        out.insert(key.clone(), value.clone());
                    }
                }
                k if NUMERIC_KEYWORDS.contains(&k) && value.is_number() => {
                    out.insert(key.clone(), value.clone());
                }
                // Everything else is outside Gemini's subset.
                _ => {}
            }
        }

        if let Some(note) = extra_description {
            let text = match out.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d} ({note})"),
                _ => note,
            };
            out.insert("description".into(), Value::String(text));
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }
        infer_type(&mut out);
        fix_format(&mut out);
        if let (Some(Value::Array(req)), Some(Value::Object(props))) =
            (out.get("required"), out.get("properties"))
        {
            let req: Vec<Value> = req
                .iter()
                .filter(|n| n.as_str().is_some_and(|n| props.contains_key(n)))
                .cloned()
                .collect();
            out.insert("required".into(), Value::Array(req));
        } else if !out.contains_key("properties") {
            out.remove("required");
        }
        if out
            .get("required")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            out.remove("required");
        }
        out
    }

    /// The definition a local `$ref` names (`#/$defs/X`, `#/definitions/X`, or any JSON
    /// pointer into the root document).
    fn resolve(&self, r: &str) -> Option<&'a Value> {
        let pointer = r.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
        && v.as_object().is_some_and(|o| {
            o.keys()
                .all(|k| matches!(k.as_str(), "type" | "description" | "title"))
        })
}

fn allowed_values(values: &[Value]) -> String {
    let list: Vec<String> = values.iter().map(Value::to_string).collect();
    format!("allowed values: {}", list.join(", "))
}

/// Merges a cleaned `allOf` branch into `out`: properties and `required` united, other
/// keywords kept from whichever came first.
fn merge_into(out: &mut Map<String, Value>, branch: Map<String, Value>) {
    for (k, v) in branch {
        match (k.as_str(), v) {
            ("properties", Value::Object(props)) => match out.get_mut("properties") {
                Some(Value::Object(existing)) => {
                    for (name, schema) in props {
                        existing.entry(name).or_insert(schema);
                    }
                }
                _ => {
                    out.insert(k, Value::Object(props));
                }
            },
            ("required", Value::Array(names)) => union_required(out, names),
            (_, v) => {
                out.entry(k).or_insert(v);
            }
        }
    }
}

fn union_required(out: &mut Map<String, Value>, names: Vec<Value>) {
    match out.get_mut("required") {
        Some(Value::Array(existing)) => {
            for n in names {
                if !existing.contains(&n) {
                    existing.push(n);
                }
            }
        }
        _ => {
            out.insert("required".into(), Value::Array(names));
        }
    }
}

/// Vertex rejects typeless schemas in places: infer the type from the schema's shape.
fn infer_type(out: &mut Map<String, Value>) {
    if out.contains_key("type") || out.contains_key("anyOf") {
        return;
    }
    let inferred = if out.contains_key("properties") {
        "object"
    } else if out.contains_key("items") {
        "array"
    } else if out.contains_key("enum") {
        "string"
    } else {
        return;
    };
    out.insert("type".into(), Value::String(inferred.into()));
}

/// Gemini knows `enum` and `date-time` for strings, `int32`/`int64` for integers and
/// `float`/`double` for numbers; any other `format` is a 400.
fn fix_format(out: &mut Map<String, Value>) {
    let Some(format) = out.get("format").and_then(Value::as_str) else {
        return;
    };
    let ok = match out.get("type").and_then(Value::as_str) {
        Some("string") => matches!(format, "enum" | "date-time"),
        Some("integer") => matches!(format, "int32" | "int64"),
        Some("number") => matches!(format, "float" | "double"),
        _ => false,
    };
    if !ok {
        out.remove("format");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_what_gemini_rejects() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "x",
            "title": "Args",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "n": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10,
                      "default": 3, "examples": [1], "minimum": 1, "format": "int32"},
                "email": {"type": "string", "format": "email", "title": "E"},
                "when": {"type": "string", "format": "date-time"},
                "map": {"type": "object", "patternProperties": {"^x": {"type": "string"}},
                        "unevaluatedProperties": false}
            },
            "required": ["n", "ghost"]
        });
        assert_eq!(
            clean(&s),
            json!({
                "type": "object",
                "properties": {
                    "n": {"type": "integer", "minimum": 1, "format": "int32"},
                    "email": {"type": "string"},
                    "when": {"type": "string", "format": "date-time"},
                    "map": {"type": "object"}
                },
                "required": ["n"]
            })
        );
    }

    #[test]
    fn nullable_types_const_and_enums() {
        let s = json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "B"},
                "c": {"const": "fixed"},
                "d": {"type": "integer", "enum": [1, 2, 3], "description": "level"},
                "e": {"type": ["string", "integer"]},
                "f": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "g": {"enum": ["x", null]},
                "h": {"const": 7}
            }
        });
        assert_eq!(
            clean(&s)["properties"],
            json!({
                "a": {"type": "string", "nullable": true},
                "b": {"type": "integer", "nullable": true, "description": "B"},
                "c": {"type": "string", "enum": ["fixed"]},
                "d": {"type": "integer", "description": "level (allowed values: 1, 2, 3)"},
                "e": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "f": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "g": {"type": "string", "enum": ["x"], "nullable": true},
                "h": {"description": "allowed values: 7"}
            })
        );
    }

    #[test]
    fn refs_are_inlined_and_recursion_is_cut() {
        let s = json!({
            "type": "object",
            "$defs": {
                "Point": {"type": "object", "properties": {"x": {"type": "number"}},
                          "required": ["x"], "additionalProperties": false},
                "Node": {"type": "object", "properties": {
                    "value": {"type": "string"},
                    "next": {"$ref": "#/$defs/Node", "description": "the next node"}
                }}
            },
            "definitions": {"Legacy": {"type": "boolean"}},
            "properties": {
                "p": {"$ref": "#/$defs/Point", "description": "where"},
                "list": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "flag": {"$ref": "#/definitions/Legacy"},
                "gone": {"$ref": "https://example.com/schema.json"}
            }
        });
        assert_eq!(
            clean(&s)["properties"],
            json!({
                "p": {"type": "object", "properties": {"x": {"type": "number"}},
                      "required": ["x"], "description": "where"},
                "list": {"type": "array", "items": {"type": "object", "properties": {
                    "value": {"type": "string"},
                    "next": {"description": "the next node"}
                }}},
                "flag": {"type": "boolean"},
                "gone": {}
            })
        );
    }

    #[test]
    fn all_of_tuples_and_inferred_types() {
        let s = json!({
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"items": {"type": "string"}}}, "required": ["b"]}
            ],
            "properties": {"c": {"items": [{"type": "string"}, {"type": "integer"}]}}
        });
        assert_eq!(
            clean(&s),
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "array", "items": {"type": "string"}},
                    "c": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}
                },
                "required": ["a", "b"]
            })
        );
    }

    #[test]
    fn empty_object_parameters_are_detected() {
        assert!(is_empty_object(&clean(
            &json!({"type": "object", "properties": {}})
        )));
        assert!(is_empty_object(&clean(
            &json!({"type": "object", "additionalProperties": false})
        )));
        assert!(is_empty_object(&clean(&json!({}))));
        assert!(!is_empty_object(&clean(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}})
        )));
    }

    #[test]
    fn deep_or_garbage_schemas_do_not_panic() {
        let mut s = json!({"type": "string"});
        for _ in 0..200 {
            s = json!({"type": "object", "properties": {"x": s}});
        }
        let _ = clean(&s);
        assert_eq!(clean(&json!(true)), json!({}));
        assert_eq!(
            clean(&json!({"properties": 3, "items": "x", "required": "y"})),
            json!({"items": {}, "type": "array"})
        );
    }
}
