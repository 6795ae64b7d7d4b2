//! Values: converting what users and scripts supply to the field types a workflow declares,
//! and moving data between JSON (the store, the API) and rhai (the scripts).
//!
//! Conversion happens before any guard runs. rhai compares values of different types as
//! simply unequal, so `"15000" >= 15000` is false without an error: an expense given as a
//! string would silently skip the landlord's approval. Here a numeric string for a money field
//! becomes a number (strictly: the whole string must be the number) and anything else that does
//! not fit its type is refused.

use super::refusal::Refusal;
use crate::definition::model::{Field, FieldType};
use chrono::{DateTime, NaiveDate};
use rhai::Dynamic;
use serde_json::{Map, Number, Value};

/// Converts `value` to the declared type of field `name`, within its length limit.
pub fn convert(name: &str, field: &Field, value: &Value) -> Result<Value, Refusal> {
    let values: Vec<&str> = field.values.iter().map(|v| v.as_str()).collect();
    let item = field.items.as_ref().map(|i| i.value);
    let converted = convert_as(name, field.kind.value, item, &values, value)?;
    if let Some(limit) = field.length_limit() {
        within(name, &converted, limit as usize)?;
    }
    Ok(converted)
}

/// Refuses a text of more than `limit` characters or a list of more than `limit` items; the
/// items of a list of texts are held to the default length of a `string`.
pub fn within(name: &str, value: &Value, limit: usize) -> Result<(), Refusal> {
    let too_long = |length: usize, limit: usize, unit: &'static str| {
        Err(Refusal::TooLong {
            field: name.to_string(),
            length,
            limit,
            unit,
        })
    };
    match value {
        // Most texts are far shorter than their limit in bytes, and need no counting.
        Value::String(s) if s.len() <= limit => {}
        Value::String(s) => {
            let length = s.chars().count();
            if length > limit {
                return too_long(length, limit, "characters");
            }
        }
        Value::Array(items) => {
            if items.len() > limit {
                return too_long(items.len(), limit, "items");
            }
            let item_limit = crate::definition::model::DEFAULT_STRING_LENGTH as usize;
            for (i, item) in items.iter().enumerate() {
                if let Value::String(s) = item
                    && s.chars().count() > item_limit
                {
                    return Err(Refusal::TooLong {
                        field: format!("{name}[{i}]"),
                        length: s.chars().count(),
                        limit: item_limit,
                        unit: "characters",
                    });
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a text holds control characters: none in a one-line `string`; tabs and line breaks
/// only in a `text`.
fn has_control(s: &str, multiline: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
}

fn convert_as(
    name: &str,
    kind: FieldType,
    item: Option<FieldType>,
    values: &[&str],
    value: &Value,
) -> Result<Value, Refusal> {
    let refuse = |problem: String| {
        let expected = match kind {
            FieldType::Enum => format!("one of {}", values.join(", ")),
            FieldType::Money => "an amount in yuan (at most 2 decimal places)".to_string(),
            FieldType::Date => "a date like 2026-03-01".to_string(),
            FieldType::Datetime => "a date and time like 2026-03-01T09:30:00+08:00".to_string(),
            other => format!("a {}", other.name()),
        };
        Err(Refusal::IllTyped {
            field: name.to_string(),
            expected,
            problem,
        })
    };
    let shown = || short(value);
    match kind {
        FieldType::String | FieldType::Text => match value {
            Value::String(s) if has_control(s, kind == FieldType::Text) => refuse(format!(
                "got a text with control characters{}",
                if kind == FieldType::Text {
                    " (only tabs and line breaks are allowed)"
                } else {
                    " (a one-line text has no line breaks or tabs)"
                }
            )),
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
            _ => refuse(format!("got {}", shown())),
        },
        FieldType::Integer => {
            let parsed = match value {
                Value::Number(n) => n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                        .map(|f| f as i64)
                }),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match parsed {
                Some(i) => Ok(Value::Number(i.into())),
                None => refuse(format!("got {}", shown())),
            }
        }
        FieldType::Number | FieldType::Money => {
            let parsed = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let Some(number) = parsed.filter(|f| f.is_finite()) else {
                return refuse(format!("got {}", shown()));
            };
            if kind == FieldType::Money {
                if number < 0.0 {
                    return refuse(format!("got a negative amount {number}"));
                }
                let fen = number * 100.0;
                if (fen - fen.round()).abs() > 1e-6 {
                    return refuse(format!("got {number}, which has fractions of a fen"));
                }
            }
            match Number::from_f64(number) {
                Some(n) => Ok(Value::Number(n)),
                None => refuse(format!("got {}", shown())),
            }
        }
        FieldType::Bool => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s == "true" => Ok(Value::Bool(true)),
            Value::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => refuse(format!("got {}", shown())),
        },
        FieldType::Date => match value {
            Value::String(s) if NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok() => {
                Ok(Value::String(s.trim().to_string()))
            }
            _ => refuse(format!("got {}", shown())),
        },
        FieldType::Datetime => match value {
            Value::String(s) => match DateTime::parse_from_rfc3339(s.trim()) {
                Ok(t) => Ok(Value::String(t.to_rfc3339())),
                Err(err) => refuse(format!("{}: {err}", shown())),
            },
            _ => refuse(format!("got {}", shown())),
        },
        FieldType::Enum => match value {
            Value::String(s) if values.contains(&s.as_str()) => Ok(value.clone()),
            _ => refuse(format!("got {}", shown())),
        },
        FieldType::List => match value {
            Value::Array(items) => {
                let kind = item.unwrap_or(FieldType::String);
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| convert_as(&format!("{name}[{i}]"), kind, None, values, v))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array)
            }
            _ => refuse(format!("got {}", shown())),
        },
    }
}

/// A value as shown in a refusal: short, and typed (`"15000"` is a text, `15000` a number).
fn short(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "nothing (null)".to_string(),
        Value::Bool(_) => "true/false",
        Value::Number(_) => "the number",
        Value::String(_) => "the text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    };
    let mut text = value.to_string();
    if text.chars().count() > 40 {
        text = text.chars().take(40).collect::<String>() + "...";
    }
    format!("{kind} {text}")
}

/// JSON to rhai, for scripts. Integers stay integers; other numbers become floats.
pub fn to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic).collect()),
        Value::Object(map) => Dynamic::from_map(to_rhai_map(map)),
    }
}

/// A JSON object as a rhai map.
pub fn to_rhai_map(map: &Map<String, Value>) -> rhai::Map {
    map.iter()
        .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
        .collect()
}

/// rhai to JSON, for action results. `None` for values JSON cannot hold (functions,
/// timestamps, `()`), which the caller refuses.
pub fn from_dynamic(value: &Dynamic) -> Option<Value> {
    if value.is_unit() {
        return None;
    }
    if let Ok(b) = value.as_bool() {
        return Some(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Some(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Number::from_f64(f).map(Value::Number);
    }
    if value.is_string() {
        return value.clone().into_string().ok().map(Value::String);
    }
    if value.is_array() {
        let array = value.clone().into_array().ok()?;
        return array
            .iter()
            .map(from_dynamic)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array);
    }
    if value.is_map() {
        let map = value.clone().try_cast::<rhai::Map>()?;
        return map
            .iter()
            .map(|(k, v)| from_dynamic(v).map(|v| (k.to_string(), v)))
            .collect::<Option<Map<_, _>>>()
            .map(Value::Object);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn as_type(kind: FieldType, value: Value) -> Result<Value, Refusal> {
        convert_as("f", kind, None, &["a", "b"], &value)
    }

    #[test]
    fn numeric_text_becomes_a_number_strictly() {
        assert_eq!(
            as_type(FieldType::Money, json!("15000")),
            Ok(json!(15000.0))
        );
        assert_eq!(
            as_type(FieldType::Money, json!(" 199.5 ")),
            Ok(json!(199.5))
        );
        assert_eq!(as_type(FieldType::Integer, json!("12")), Ok(json!(12)));
        for bad in [
            json!("15k"),
            json!("1e400"),
            json!(true),
            json!(null),
            json!(-5),
            json!(0.001),
        ] {
            assert!(
                matches!(
                    as_type(FieldType::Money, bad.clone()),
                    Err(Refusal::IllTyped { .. })
                ),
                "{bad}"
            );
        }
        assert!(as_type(FieldType::Integer, json!(1.5)).is_err());
    }

    #[test]
    fn other_types_are_checked() {
        assert_eq!(as_type(FieldType::Bool, json!("true")), Ok(json!(true)));
        assert!(as_type(FieldType::Bool, json!("yes")).is_err());
        assert!(as_type(FieldType::Date, json!("2026-02-30")).is_err());
        assert_eq!(
            as_type(FieldType::Date, json!("2026-02-28")),
            Ok(json!("2026-02-28"))
        );
        assert!(as_type(FieldType::Datetime, json!("2026-02-28 09:00")).is_err());
        assert_eq!(as_type(FieldType::Enum, json!("a")), Ok(json!("a")));
        assert!(as_type(FieldType::Enum, json!("c")).is_err());
        assert!(as_type(FieldType::String, json!({"x": 1})).is_err());
        let list = convert_as(
            "f",
            FieldType::List,
            Some(FieldType::Money),
            &[],
            &json!(["1", 2]),
        );
        assert_eq!(list, Ok(json!([1.0, 2.0])));
    }

    #[test]
    fn texts_are_held_to_their_length_and_line() {
        assert!(as_type(FieldType::String, json!("B2-031\n伪造的一行")).is_err());
        assert!(as_type(FieldType::String, json!("a\u{0}b")).is_err());
        assert_eq!(
            as_type(FieldType::Text, json!("第一行\n第二行")),
            Ok(json!("第一行\n第二行"))
        );
        assert!(as_type(FieldType::Text, json!("a\u{1b}[31m")).is_err());
        assert_eq!(within("f", &json!("动火证"), 3), Ok(()));
        assert!(matches!(
            within("f", &json!("动火证明"), 3),
            Err(Refusal::TooLong {
                length: 4,
                limit: 3,
                ..
            })
        ));
        assert!(matches!(
            within("f", &json!([1, 2, 3]), 2),
            Err(Refusal::TooLong { unit: "items", .. })
        ));
    }

    #[test]
    fn rhai_and_json_round_trip() {
        let value = json!({"a": 1, "b": 2.5, "c": "x", "d": [true, null], "e": {"f": 1}});
        let back = from_dynamic(&to_dynamic(&value));
        // `null` has no JSON form coming back from rhai: the whole value is refused.
        assert_eq!(back, None);
        let value = json!({"a": 1, "b": 2.5, "c": "x", "d": [true], "e": {"f": 1}});
        assert_eq!(from_dynamic(&to_dynamic(&value)), Some(value));
    }
}
