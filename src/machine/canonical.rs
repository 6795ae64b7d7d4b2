//! An entry's canonical JSON, written out directly: byte for byte what `serde_json` makes of
//! an [`Entry`] (its fields in declaration order, `skip_serializing_if` honoured, compact),
//! which is what the hash covers (with `hash` empty). The store keeps serde_json's own bytes;
//! this writer only feeds the hash, and serde_json stays the definition of the format.
//!
//! Why it exists: serialising through serde was the larger part of a step's own work. Every
//! key went through serde_json's string escaper a byte at a time and the time through `fmt` a
//! character at a time. On the four-step workload (`cargo bench --bench runtime --
//! four_step`, `examples/four_step.rs`) this writer takes a pure step from 17,600 to 11,200
//! instructions besides SHA-256 (callgrind), and from 3.3 to 2.5 µs on the shared build
//! machine (the best of seven interleaved runs of the example): the largest single gain,
//! with a reused buffer and the rest of the step as it was. Here the keys are literals, texts
//! that need no escaping (nearly all: ids, hashes, states) are copied whole after one
//! branch-free scan, the time is written with a fast path, and everything else (payload and
//! changes, timers, signers, children, any text that does need escaping, any unusual time) is
//! handed to `serde_json` itself, whose compact output for a value does not depend on where
//! the value sits.
//!
//! What holds it to serde_json: debug builds check every hashed entry against serde_json (see
//! [`Entry::compute_hash`](super::Entry::compute_hash)); a property test compares both on
//! arbitrary entries (any text, any time chrono can hold, any JSON in the maps, every optional
//! field present or not); [`FIELDS`] must list the entry's fields as serde lists them, so a
//! field added to [`Entry`] fails a test until it is written here; and `entry.rs`'s golden
//! test pins the encoding and hash of two entries byte for byte.

use super::entry::{Entry, EntryKind, GuardResult};
use crate::definition::model::AuditKind;
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

#[cfg(test)]
/// The fields [`write_entry`] writes, in its order: the entry's, as serde declares them.
pub(super) const FIELDS: [&str; 32] = [
    "instance",
    "seq",
    "kind",
    "workflow",
    "version",
    "event",
    "from",
    "to",
    "entered",
    "finished",
    "actor",
    "role",
    "payload",
    "changes",
    "guards",
    "signature",
    "audit",
    "branch",
    "signers",
    "timers_armed",
    "timers_cancelled",
    "spawned",
    "child",
    "timer",
    "migration",
    "business_key",
    "parent",
    "number",
    "at",
    "idempotency_key",
    "prev_hash",
    "hash",
];

/// Writes `entry` as its canonical JSON, with `hash` in place of its hash.
pub(super) fn write_entry(out: &mut Vec<u8>, entry: &Entry, hash: &str) {
    out.extend_from_slice(b"{\"instance\":");
    text(out, &entry.instance);
    out.extend_from_slice(b",\"seq\":");
    number(out, entry.seq);
    out.extend_from_slice(match entry.kind {
        EntryKind::Start => b",\"kind\":\"start\"",
        EntryKind::Event => b",\"kind\":\"event\"",
        EntryKind::ChildFinished => b",\"kind\":\"child_finished\"",
        EntryKind::Timer => b",\"kind\":\"timer\"",
        EntryKind::Migrate => b",\"kind\":\"migrate\"",
    });
    out.extend_from_slice(b",\"workflow\":");
    text(out, &entry.workflow);
    out.extend_from_slice(b",\"version\":");
    text(out, &entry.version);
    out.extend_from_slice(b",\"event\":");
    text(out, &entry.event);
    out.extend_from_slice(b",\"from\":");
    optional_text(out, entry.from.as_deref());
    out.extend_from_slice(b",\"to\":");
    text(out, &entry.to);
    out.extend_from_slice(b",\"entered\":");
    boolean(out, entry.entered);
    out.extend_from_slice(b",\"finished\":");
    boolean(out, entry.finished);
    out.extend_from_slice(b",\"actor\":");
    text(out, &entry.actor);
    out.extend_from_slice(b",\"role\":");
    optional_text(out, entry.role.as_deref());
    out.extend_from_slice(b",\"payload\":");
    if entry.payload.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        serde(out, &entry.payload);
    }
    out.extend_from_slice(b",\"changes\":");
    if entry.changes.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        serde(out, &entry.changes);
    }
    if !entry.guards.is_empty() {
        out.extend_from_slice(b",\"guards\":");
        guards(out, &entry.guards);
    }
    if let Some(signature) = &entry.signature {
        out.extend_from_slice(b",\"signature\":");
        serde(out, signature);
    }
    if let Some(audit) = entry.audit {
        out.extend_from_slice(match audit {
            AuditKind::Approval => b",\"audit\":\"approval\"",
            AuditKind::Rejection => b",\"audit\":\"rejection\"",
            AuditKind::Decision => b",\"audit\":\"decision\"",
        });
    }
    if let Some(branch) = entry.branch {
        out.extend_from_slice(b",\"branch\":");
        number(out, u64::from(branch));
    }
    if let Some(signers) = &entry.signers {
        out.extend_from_slice(b",\"signers\":");
        serde(out, signers);
    }
    if !entry.timers_armed.is_empty() {
        out.extend_from_slice(b",\"timers_armed\":");
        serde(out, &entry.timers_armed);
    }
    if !entry.timers_cancelled.is_empty() {
        out.extend_from_slice(b",\"timers_cancelled\":");
        serde(out, &entry.timers_cancelled);
    }
    if !entry.spawned.is_empty() {
        out.extend_from_slice(b",\"spawned\":");
        serde(out, &entry.spawned);
    }
    if let Some(child) = &entry.child {
        out.extend_from_slice(b",\"child\":");
        serde(out, child);
    }
    if let Some(timer) = &entry.timer {
        out.extend_from_slice(b",\"timer\":");
        serde(out, timer);
    }
    if let Some(migration) = &entry.migration {
        out.extend_from_slice(b",\"migration\":");
        serde(out, migration);
    }
    if let Some(key) = &entry.business_key {
        out.extend_from_slice(b",\"business_key\":");
        text(out, key);
    }
    if let Some(parent) = &entry.parent {
        out.extend_from_slice(b",\"parent\":");
        text(out, parent);
    }
    if let Some(number) = &entry.number {
        out.extend_from_slice(b",\"number\":");
        text(out, number);
    }
    out.extend_from_slice(b",\"at\":");
    time(out, &entry.at);
    if let Some(key) = &entry.idempotency_key {
        out.extend_from_slice(b",\"idempotency_key\":");
        text(out, key);
    }
    out.extend_from_slice(b",\"prev_hash\":");
    text(out, &entry.prev_hash);
    out.extend_from_slice(b",\"hash\":");
    text(out, hash);
    out.push(b'}');
}

/// Any value, as `serde_json` writes it.
fn serde(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    // Writing plain data to memory does not fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A JSON string. `serde_json` escapes `"`, `\` and the control characters below U+0020, and
/// nothing else; a text without them is copied as it is. The scan has no early exit, so that
/// it compiles to a few vector instructions per 32 bytes.
fn text(out: &mut Vec<u8>, s: &str) {
    let escapes = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escapes {
        serde(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn optional_text(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => text(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn guards(out: &mut Vec<u8>, guards: &[GuardResult]) {
    out.push(b'[');
    for (i, guard) in guards.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"guard\":");
        text(out, &guard.guard);
        out.extend_from_slice(b",\"passed\":");
        boolean(out, guard.passed);
        out.push(b'}');
    }
    out.push(b']');
}

/// A time as chrono serialises it: RFC 3339 in UTC with `Z`, and as many digits of the
/// second's fraction as it needs (none, 3, 6 or 9). Years outside 0-9999 and leap seconds
/// are left to chrono.
fn time(out: &mut Vec<u8>, at: &DateTime<Utc>) {
    let naive = at.naive_utc();
    let year = naive.year();
    let nano = naive.nanosecond();
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        serde(out, at);
        return;
    }
    let two = |out: &mut Vec<u8>, n: u32| {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8])
    };
    out.push(b'"');
    let year = year as u32;
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, naive.month());
    out.push(b'-');
    two(out, naive.day());
    out.push(b'T');
    two(out, naive.hour());
    out.push(b':');
    two(out, naive.minute());
    out.push(b':');
    two(out, naive.second());
    let (fraction, digits) = if nano == 0 {
        (0, 0)
    } else if nano.is_multiple_of(1_000_000) {
        (nano / 1_000_000, 3)
    } else if nano.is_multiple_of(1_000) {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if digits > 0 {
        out.push(b'.');
        let mut buffer = [0u8; 9];
        let mut rest = fraction;
        for at in (0..digits).rev() {
            buffer[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&buffer[..digits]);
    }
    out.extend_from_slice(b"Z\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::entry::{
        ArmedTimer, ChildStatus, PendingSigner, Signature, SpawnedChild, TimerFiring,
    };
    use crate::machine::migrate::{Mapping, Migration, TimerPolicy};
    use chrono::TimeZone;
    use serde_json::json;

    fn canonical(entry: &Entry) -> String {
        let mut out = Vec::new();
        write_entry(&mut out, entry, &entry.hash);
        String::from_utf8(out).expect("utf-8")
    }

    fn full(text: &str, at: DateTime<Utc>) -> Entry {
        let map =
            json!({"amount": 18000.5, "note": text, "n": 3, "list": [1, "x", null], "b": false})
                .as_object()
                .cloned()
                .unwrap_or_default();
        Entry {
            instance: format!("expense-1{text}").into(),
            seq: u64::MAX,
            workflow: "expense".into(),
            version: "ab".repeat(32),
            from: Some(text.into()),
            to: "paid".into(),
            entered: true,
            finished: true,
            actor: text.into(),
            role: Some("finance".into()),
            payload: map.clone(),
            changes: map.clone(),
            guards: vec![
                GuardResult {
                    guard: format!("data.amount >= 15000 && {text}"),
                    passed: true,
                },
                GuardResult {
                    guard: "x".into(),
                    passed: false,
                },
            ],
            signature: Some(Box::new(Signature {
                signer: 2,
                role: text.into(),
                actor: "li".into(),
                at,
            })),
            audit: Some(AuditKind::Rejection),
            branch: Some(u32::MAX),
            signers: Some(vec![PendingSigner {
                role: "head".into(),
                title: Some(text.into()),
                required: false,
            }]),
            timers_armed: vec![ArmedTimer {
                id: "3-0".into(),
                event: "remind".into(),
                due: at,
                title: None,
                note: Some(text.into()),
            }],
            timers_cancelled: vec!["1-0".into(), text.into()],
            spawned: vec![SpawnedChild {
                id: "c-1".into(),
                workflow: "child".into(),
                data: map.clone(),
                key: Some(text.into()),
                number: None,
            }],
            child: Some(Box::new(ChildStatus {
                id: "c-1".into(),
                state: text.into(),
            })),
            timer: Some(Box::new(TimerFiring {
                id: "2-0".into(),
                due: at,
                title: Some(text.into()),
                refused: None,
            })),
            migration: Some(Box::new(Migration {
                from_version: "ef".repeat(32),
                mapping: Mapping {
                    states: [(text.to_string(), "reviewed".to_string())]
                        .into_iter()
                        .collect(),
                    set: map.clone(),
                    drop_signatures: true,
                    timers: TimerPolicy::Keep,
                },
                comment: Some(text.into()),
                approval: None,
                dropped_signatures: Vec::new(),
                kept_timers: vec![text.into()],
            })),
            business_key: Some(text.into()),
            parent: Some("p-1".into()),
            number: Some("DH-2026-0001".into()),
            idempotency_key: Some(text.into()),
            prev_hash: "cd".repeat(32),
            hash: text.into(),
            ..Entry::blank(EntryKind::ChildFinished, text, at)
        }
    }

    const TEXTS: [&str; 7] = [
        "",
        "plain",
        "动火作业 审批",
        "quote \" and \\ back",
        "line\nbreak\ttab\r\u{8}\u{c}",
        "\u{0}\u{1f}\u{7f}\u{2028}",
        "emoji 🚒 and é",
    ];

    #[test]
    fn every_field_is_written_as_serde_json_writes_it() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 2, 1, 30, 0)
            .single()
            .expect("valid");
        for text in TEXTS {
            let entry = full(text, at);
            assert_eq!(
                canonical(&entry),
                serde_json::to_string(&entry).expect("serialises"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn fields_left_out_when_empty_are_left_out_alike() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 2, 1, 30, 0)
            .single()
            .expect("valid");
        for kind in [
            EntryKind::Start,
            EntryKind::Event,
            EntryKind::ChildFinished,
            EntryKind::Timer,
        ] {
            let mut entry = Entry::blank(kind, "submit", at);
            assert_eq!(
                canonical(&entry),
                serde_json::to_string(&entry).expect("serialises")
            );
            for audit in [
                AuditKind::Approval,
                AuditKind::Rejection,
                AuditKind::Decision,
            ] {
                entry.audit = Some(audit);
                entry.branch = Some(0);
                entry.signers = Some(Vec::new());
                assert_eq!(
                    canonical(&entry),
                    serde_json::to_string(&entry).expect("serialises")
                );
            }
        }
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let base = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("valid");
        let mut times = vec![
            base,
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0)
                .single()
                .expect("valid"),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0)
                .single()
                .expect("valid"),
        ];
        for nanos in [
            1,
            10,
            999,
            1_000,
            120_000,
            999_999,
            1_000_000,
            5_000_000,
            123_456_789,
            999_999_999,
        ] {
            times.push(base + chrono::Duration::nanoseconds(nanos) - chrono::Duration::seconds(1));
        }
        // A leap second, as chrono represents it.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .expect("valid")
            .and_utc();
        times.push(leap);
        for at in times {
            let mut out = Vec::new();
            time(&mut out, &at);
            assert_eq!(
                String::from_utf8(out).expect("utf-8"),
                serde_json::to_string(&at).expect("serialises"),
                "{at:?}"
            );
        }
    }

    #[test]
    fn numbers_are_written_in_full() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn the_fields_written_are_the_entrys() {
        assert_eq!(
            FIELDS.as_slice(),
            Entry::field_names(),
            "a field of Entry is not written by canonical::write_entry (or not in its place)"
        );
    }

    mod arbitrary {
        use super::super::*;
        use crate::machine::entry::{
            ArmedTimer, ChildStatus, PendingSigner, Signature, SpawnedChild, TimerFiring,
        };
        use crate::machine::migrate::{Mapping, Migration, TimerPolicy};
        use proptest::collection::{btree_map, vec};
        use proptest::option::of;
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        /// Any text: plain identifiers, texts full of what JSON escapes, any Unicode.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9_.-]{0,16}",
                "[a-z\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}é动🚒 ]{0,12}",
                any::<String>(),
            ]
        }

        /// Any time chrono holds, whole seconds most often, and every precision of fraction
        /// (leap seconds included).
        fn time() -> impl Strategy<Value = DateTime<Utc>> {
            let seconds = prop_oneof![
                1_700_000_000i64..1_900_000_000,
                DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
            ];
            let nanos = prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|ms| ms * 1_000_000),
                (0u32..1_000_000).prop_map(|us| us * 1_000),
                0u32..2_000_000_000,
            ];
            (seconds, nanos).prop_filter_map("a time chrono holds", |(s, n)| {
                DateTime::from_timestamp(s, n)
            })
        }

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_filter_map("finite", |f| {
                    serde_json::Number::from_f64(f).map(Value::Number)
                }),
                text().prop_map(Value::from),
            ];
            leaf.prop_recursive(2, 12, 4, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..4).prop_map(Value::Array),
                    btree_map(text(), inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn map() -> impl Strategy<Value = Map<String, Value>> {
            btree_map(text(), json(), 0..4).prop_map(|m| m.into_iter().collect())
        }

        fn kind() -> impl Strategy<Value = EntryKind> {
            prop_oneof![
                Just(EntryKind::Start),
                Just(EntryKind::Event),
                Just(EntryKind::ChildFinished),
                Just(EntryKind::Timer),
                Just(EntryKind::Migrate),
            ]
        }

        fn audit() -> impl Strategy<Value = AuditKind> {
            prop_oneof![
                Just(AuditKind::Approval),
                Just(AuditKind::Rejection),
                Just(AuditKind::Decision),
            ]
        }

        /// What a step may record besides its names and maps.
        type Records = (
            Vec<GuardResult>,
            Option<Signature>,
            Option<Vec<PendingSigner>>,
            Vec<ArmedTimer>,
            Vec<SpawnedChild>,
            Option<ChildStatus>,
            Option<TimerFiring>,
        );

        fn records() -> impl Strategy<Value = Records> {
            (
                vec(
                    (text(), any::<bool>())
                        .prop_map(|(guard, passed)| GuardResult { guard, passed }),
                    0..3,
                ),
                of((any::<usize>(), text(), text(), time()).prop_map(
                    |(signer, role, actor, at)| Signature {
                        signer,
                        role,
                        actor,
                        at,
                    },
                )),
                of(vec(
                    (text(), of(text()), any::<bool>()).prop_map(|(role, title, required)| {
                        PendingSigner {
                            role,
                            title,
                            required,
                        }
                    }),
                    0..3,
                )),
                vec(
                    (text(), text(), time(), of(text()), of(text())).prop_map(
                        |(id, event, due, title, note)| ArmedTimer {
                            id,
                            event,
                            due,
                            title,
                            note,
                        },
                    ),
                    0..3,
                ),
                vec(
                    (text(), text(), map(), of(text()), of(text())).prop_map(
                        |(id, workflow, data, key, number)| SpawnedChild {
                            id,
                            workflow,
                            data,
                            key,
                            number,
                        },
                    ),
                    0..3,
                ),
                of((text(), text()).prop_map(|(id, state)| ChildStatus { id, state })),
                of((text(), time(), of(text()), of(text())).prop_map(
                    |(id, due, title, refused)| TimerFiring {
                        id,
                        due,
                        title,
                        refused,
                    },
                )),
            )
        }

        fn migration() -> impl Strategy<Value = Option<Migration>> {
            of(
                (text(), text(), text(), of(text()), any::<bool>(), map()).prop_map(
                    |(from_version, old, new, comment, drop_signatures, set)| Migration {
                        from_version,
                        mapping: Mapping {
                            states: [(old, new)].into_iter().collect(),
                            set,
                            drop_signatures,
                            timers: TimerPolicy::Rearm,
                        },
                        comment,
                        approval: None,
                        dropped_signatures: Vec::new(),
                        kept_timers: vec!["1-0".into()],
                    },
                ),
            )
        }

        fn entry() -> impl Strategy<Value = Entry> {
            let names = (
                text(),
                any::<u64>(),
                kind(),
                text(),
                text(),
                text(),
                of(text()),
                text(),
                any::<bool>(),
                any::<bool>(),
                text(),
                of(text()),
            );
            let rest = (
                map(),
                map(),
                of(audit()),
                of(any::<u32>()),
                vec(text(), 0..3),
                (of(text()), of(text()), of(text())),
                time(),
                of(text()),
                text(),
                text(),
                migration(),
            );
            (names, rest, records()).prop_map(|(names, rest, records)| {
                let (instance, seq, kind, workflow, version, event, from, to) = (
                    names.0, names.1, names.2, names.3, names.4, names.5, names.6, names.7,
                );
                let (entered, finished, actor, role) = (names.8, names.9, names.10, names.11);
                let (payload, changes, audit, branch, timers_cancelled, keys) =
                    (rest.0, rest.1, rest.2, rest.3, rest.4, rest.5);
                let (at, idempotency_key, prev_hash, hash) = (rest.6, rest.7, rest.8, rest.9);
                let migration = rest.10;
                let (guards, signature, signers, timers_armed, spawned, child, timer) = records;
                Entry {
                    instance: instance.into(),
                    seq,
                    kind,
                    workflow: workflow.into(),
                    version,
                    event: event.into(),
                    from: from.as_deref().map(crate::machine::Text::from),
                    to: to.into(),
                    entered,
                    finished,
                    actor: actor.into(),
                    role: role.as_deref().map(crate::machine::Text::from),
                    payload,
                    changes,
                    guards,
                    signature: signature.map(Box::new),
                    audit,
                    branch,
                    signers,
                    timers_armed,
                    timers_cancelled,
                    spawned,
                    child: child.map(Box::new),
                    timer: timer.map(Box::new),
                    migration: migration.map(Box::new),
                    business_key: keys.0,
                    parent: keys.1,
                    number: keys.2,
                    at,
                    idempotency_key,
                    prev_hash,
                    hash,
                }
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// The writer's bytes are serde_json's, for any entry and any hash put in it.
            #[test]
            fn any_entry_is_written_as_serde_json_writes_it(entry in entry(), hash in text()) {
                let mut out = Vec::new();
                write_entry(&mut out, &entry, &entry.hash);
                prop_assert_eq!(
                    String::from_utf8(out).expect("utf-8"),
                    serde_json::to_string(&entry).expect("serialises")
                );
                let blank = Entry { hash: hash.clone(), ..entry.clone() };
                let mut out = b"left over".to_vec();
                write_entry(&mut out, &entry, &hash);
                prop_assert_eq!(
                    out,
                    [b"left over".as_slice(), &serde_json::to_vec(&blank).expect("serialises")]
                        .concat()
                );
            }
        }
    }
}
