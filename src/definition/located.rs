//! Serde building blocks that keep where each value came from.
//!
//! The validator points at the exact line and column of a mistake, long after parsing. These
//! wrappers carry the source span through deserialization (from serde-saphyr's `Spanned`) and
//! describe themselves to schemars as the plain value, so the JSON Schema stays the one a
//! process owner would write by hand.

use crate::diagnostic::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

/// Lower snake_case, the form every identifier in a workflow takes.
pub const IDENTIFIER_PATTERN: &str = "^[a-z][a-z0-9_]*$";

/// A value and the span of the YAML node it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    /// What the YAML said, as the model reads it.
    pub value: T,
    /// Where it said it: the line and column a diagnostic about this value points at.
    pub span: Span,
}

impl<T> Located<T> {
    /// A value with the place it came from ([`Span::START`] for one made in code rather than
    /// read from a file).
    pub fn new(value: T, span: Span) -> Self {
        Located { value, span }
    }
}

impl<T> Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl Located<String> {
    /// The text alone, for comparing with an id or looking it up.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located {
            value: spanned.value,
            span: span_of(spanned.referenced),
        })
    }
}

/// A serde-saphyr location as a [`Span`] (lines and columns from 1).
pub(crate) fn span_of(at: serde_saphyr::Location) -> Span {
    Span {
        line: u32::try_from(at.line()).unwrap_or(u32::MAX).max(1),
        column: u32::try_from(at.column()).unwrap_or(u32::MAX).max(1),
        offset: at
            .span()
            .byte_offset()
            .and_then(|o| usize::try_from(o).ok()),
        len: at
            .span()
            .byte_len()
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0),
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A YAML mapping from identifiers to values, kept in file order (diagrams and listings follow
/// the order the process owner wrote). Duplicate keys are rejected by the parser.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<V>(pub Vec<(Located<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<V> Entries<V> {
    /// Each key, with where it is written, and its value, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&Located<String>, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    /// The keys in file order: the ids of states, fields or roles as declared.
    pub fn keys(&self) -> impl Iterator<Item = &str> + Clone {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    /// The value declared under `key`, if it is declared (a search in file order).
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }
    /// Where `key` is declared, counting from 0.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k.as_str() == key)
    }
    /// Whether `key` is declared: how a reference (`to: approved`) is checked.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    /// How many keys are declared.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the mapping declares nothing (`fields: {}`, or no `fields:` at all).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for Entries<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Entries_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "propertyNames": { "pattern": IDENTIFIER_PATTERN },
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

/// One value or a list of them: `approve: {to: x}` or `approve: [{to: x, guard: ..}, {to: y}]`.
///
/// `T` itself must not be [`Located`]: a mapping already opened cannot be re-read with its span.
/// Put spans on `T`'s fields, or wrap the whole `OneOrMany` in `Located`.
#[derive(Debug, Clone, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping, or a list of mappings")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneOrMany<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| OneOrMany(vec![t]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany<T>, A::Error> {
                Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }
        d.deserialize_any(OneOrManyVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        json_schema!({
            "anyOf": [item, { "type": "array", "items": item, "minItems": 1 }],
        })
    }
}

/// A struct that may also be written as a bare string giving its title:
/// `contractor: 申请单位` means `contractor: {title: 申请单位}`.
pub trait FromTitle {
    /// The struct with only its title given, everything else at its default.
    fn from_title(title: String) -> Self;
}

/// Deserializes `T` from a mapping, or from a string via [`FromTitle`].
#[derive(Debug, Clone, PartialEq)]
pub struct TitleOr<T>(pub T);

impl<'de, T: Deserialize<'de> + FromTitle> Deserialize<'de> for TitleOr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TitleOrVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + FromTitle> Visitor<'de> for TitleOrVisitor<T> {
            type Value = TitleOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a title string, or a mapping")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<TitleOr<T>, E> {
                Ok(TitleOr(T::from_title(s.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<TitleOr<T>, E> {
                Ok(TitleOr(T::from_title(String::new())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TitleOr<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(TitleOr)
            }
        }
        d.deserialize_any(TitleOrVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for TitleOr<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("TitleOr_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": ["string", "null"], "description": "The title, in the manual's words." },
                generator.subschema_for::<T>(),
            ],
        })
    }
}

impl<T> Deref for TitleOr<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
