use super::*;
use crate::machine::Refusal;

#[test]
fn every_message_file_parses() {
    for text in ZH.iter().chain(EN) {
        if let Err((_, errors)) = FluentResource::try_new(text.to_string()) {
            panic!("a message file does not parse: {errors:?}");
        }
    }
}

/// The ids of the messages of a language's files.
fn ids(files: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = files
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| !line.starts_with(['#', ' ']) && line.contains(" = "))
        .filter_map(|line| line.split(" = ").next())
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

#[test]
fn both_languages_have_the_same_messages() {
    assert_eq!(ids(ZH), ids(EN));
    assert!(ids(ZH).len() > 40, "{:?}", ids(ZH));
}

#[test]
fn a_message_takes_its_arguments_and_a_missing_one_falls_back_to_its_id() {
    assert_eq!(
        Lang::Zh.text_with(
            "refusal-missing_field",
            &[("event", "提交"), ("field", "金额")]
        ),
        "“提交”需要填写“金额”。"
    );
    assert_eq!(
        Lang::En.text_with(
            "refusal-missing_field",
            &[("event", "Submit"), ("field", "amount")]
        ),
        "“Submit” needs “amount”."
    );
    assert_eq!(Lang::En.text("no-such-message"), "no-such-message");
    assert_eq!(Lang::Zh.list(&["甲", "乙"]), "甲、乙");
    assert_eq!(Lang::En.list(&["a", "b"]), "a, b");
}

#[test]
fn accept_language_picks_the_highest_weight_the_site_speaks() {
    let pick = Lang::from_accept_language;
    assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::Zh));
    assert_eq!(pick("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
    assert_eq!(pick("fr-FR, en;q=0.5, zh;q=0.7"), Some(Lang::Zh));
    assert_eq!(pick("de, fr;q=0.9"), None);
    assert_eq!(pick("en;q=0, zh;q=0.1"), Some(Lang::Zh));
    assert_eq!(
        pick("en;q=2, zh;q=abc"),
        None,
        "malformed weights count for nothing"
    );
    assert_eq!(pick(""), None);
    // The header is the client's: a huge one is read only so far.
    let long = format!("{}en", "xx,".repeat(10_000));
    assert_eq!(pick(&long), None);
}

#[test]
fn a_locale_names_a_language_as_posix_orders_the_variables() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        Lang::from_locale(env(&[("LANG", "zh_CN.UTF-8")])),
        Some(Lang::Zh)
    );
    assert_eq!(
        Lang::from_locale(env(&[("LANG", "zh_CN.UTF-8"), ("LC_ALL", "en_US.UTF-8")])),
        Some(Lang::En)
    );
    assert_eq!(Lang::from_locale(env(&[("LANG", "C.UTF-8")])), None);
    assert_eq!(Lang::from_locale(env(&[])), None);
}

/// One refusal of each kind, explained in both languages: never empty, never the message id,
/// and in Chinese never an English engine phrase.
#[test]
fn every_refusal_is_explained_in_both_languages() {
    let s = |x: &str| x.to_string();
    let all = [
        Refusal::Finished { state: s("done") },
        Refusal::Stale {
            expected: 3,
            actual: 4,
        },
        Refusal::UnknownEvent {
            event: s("x"),
            state: s("a"),
            available: vec![s("submit")],
        },
        Refusal::SystemOnly {
            event: s("timeout"),
        },
        Refusal::ReservedRole,
        Refusal::RoleNotAllowed {
            event: s("approve"),
            allowed: vec![s("gm")],
            held: vec![],
        },
        Refusal::NotYourTurn {
            waiting_for: s("gm"),
        },
        Refusal::AlreadySigned { actor: s("li.na") },
        Refusal::GuardFailed {
            guard: s("x > 1"),
            reasons: vec![],
        },
        Refusal::GuardError {
            guard: s("x"),
            error: crate::script::ScriptError::Runtime(s("boom")),
        },
        Refusal::ScriptFailed {
            purpose: "action",
            script: s("x"),
            reason: s("boom"),
            thrown: None,
        },
        Refusal::MissingField {
            event: s("submit"),
            field: s("amount"),
        },
        Refusal::CommentRequired { event: s("reject") },
        Refusal::UnknownField {
            field: s("amout"),
            hint: s(""),
        },
        Refusal::FieldNotWritable {
            field: s("amount"),
            event: s("approve"),
            writable: vec![],
        },
        Refusal::FieldFixed {
            field: s("amount"),
            event: s("approve"),
            current: s("50000"),
        },
        Refusal::TooLong {
            field: s("note"),
            length: 300,
            limit: 200,
            unit: "characters",
        },
        Refusal::NotAParty {
            actor: s("sun"),
            role: s("owner"),
        },
        Refusal::IllTyped {
            field: s("amount"),
            expected: s("a number"),
            problem: s("got x"),
        },
        Refusal::FourEyes {
            actor: s("a"),
            earlier: s("a.submit"),
            step: s("b.approve"),
        },
        Refusal::UnknownState { state: s("gone") },
        Refusal::TimerNotPending { timer: s("t") },
        Refusal::Calendar {
            reason: s("no data for 2031"),
        },
    ];
    assert_eq!(all.len(), crate::machine::refusal::CODES.len());
    let with = Explain {
        event: Some("submit"),
        ..Explain::default()
    };
    for refusal in &all {
        for lang in Lang::ALL {
            let text = explain(refusal, lang, &with);
            assert!(
                !text.is_empty() && !text.starts_with("refusal-"),
                "{refusal:?}: {text}"
            );
            assert!(!text.contains('`'), "{text}");
        }
        let zh = explain(refusal, Lang::Zh, &with);
        assert!(
            zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{refusal:?} in Chinese: {zh}"
        );
    }
}

/// Every diagnostic code has a name and a meaning in both languages, and the English meaning
/// is the code's own documentation (the README's table).
#[test]
fn every_diagnostic_code_is_named_in_both_languages() {
    use crate::diagnostic::Code;
    for &code in Code::ALL {
        for lang in Lang::ALL {
            let title = lang.code_title(code);
            assert!(
                !title.starts_with("code-"),
                "{code:?} has no title in {lang:?}"
            );
            assert!(
                !lang.code_meaning(code).starts_with("code-"),
                "{code:?} in {lang:?}"
            );
        }
        assert_eq!(Lang::En.code_meaning(code), code.description(), "{code:?}");
        assert!(
            Lang::Zh
                .code_title(code)
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "{code:?}"
        );
    }
}

/// The `console-…` message ids written in the console's code: every string literal that
/// starts with `console-` in `src/server/console/`.
fn console_ids_in_code() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/console");
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).expect("the console's sources");
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a console source");
        for (at, _) in text.match_indices("\"console-") {
            let rest = &text[at + 1..];
            let end = rest.find('"').unwrap_or(rest.len());
            let id = &rest[..end];
            if id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
                found.push((file.unwrap_or_default(), id.to_string()));
            }
        }
    }
    found
}

#[test]
fn every_console_message_the_code_names_exists_in_both_languages() {
    let used = console_ids_in_code();
    assert!(used.len() > 100, "the scan found only {used:?}");
    for (file, id) in &used {
        for lang in Lang::ALL {
            assert!(lang.has(id), "{file} uses `{id}`, which {lang:?} lacks");
        }
    }
    // And no message of the console's files is left unused.
    for id in ids(&[include_str!("../../locales/zh-CN/console.ftl")]) {
        assert!(
            used.iter().any(|(_, u)| *u == id),
            "`{id}` is in console.ftl but no console code uses it"
        );
    }
}

#[test]
fn console_messages_take_their_counts_in_each_language() {
    assert_eq!(
        Lang::Zh.count("console-time-working-days", 2, &[]),
        "2 个工作日"
    );
    assert_eq!(
        Lang::En.count("console-time-working-days", 1, &[]),
        "1 working day"
    );
    assert_eq!(
        Lang::En.count("console-time-working-days", 3, &[]),
        "3 working days"
    );
    assert_eq!(
        Lang::En.text_with("console-time-left-working", &[("span", "2 hours")]),
        "2 hours of working time left"
    );
}
