use super::*;
use crate::i18n::text;
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

/// A `text!(...)` written in the library's sources: where, its message id and the names of
/// the arguments it gives.
#[derive(Debug)]
struct TextInCode {
    file: String,
    id: String,
    args: Vec<String>,
}

/// Every `text!("id", name = value, ...)` in `src/` (comments skipped): the macro makes the id
/// and the argument names literals, so they can be read here as the compiler reads them.
fn texts_in_code() -> Vec<TextInCode> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a source folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("a source file");
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for (at, _) in text.match_indices("text!(") {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            if text[line_start..at].trim_start().starts_with("//") || text[..at].ends_with('"') {
                continue;
            }
            let (id, args) = read_text_call(&text[at + "text!(".len()..])
                .unwrap_or_else(|| panic!("{name}: a text! the test cannot read"));
            found.push(TextInCode {
                file: name.clone(),
                id,
                args,
            });
        }
    }
    found
}

/// The id and argument names of a `text!(` call, given what follows its `(`.
fn read_text_call(rest: &str) -> Option<(String, Vec<String>)> {
    let rest = rest.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    let id = rest[..end].to_string();
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut segment = String::new();
    let mut chars = rest[end + 1..].chars();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth > 0 => depth -= 1,
            ')' => {
                args.extend(arg_name(&segment));
                return Some((id, args));
            }
            ',' if depth == 0 => {
                args.extend(arg_name(&segment));
                segment.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            segment.push(c);
        }
    }
    None
}

/// `name` of a `name = value` argument.
fn arg_name(segment: &str) -> Option<String> {
    let (name, _) = segment.split_once('=')?;
    let name = name.trim();
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .then(|| name.to_string())
}

/// Each message of a Fluent file with the `$variables` its pattern uses (terms, whose
/// variables are their own parameters, are left out).
fn variables(file: &str) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in file.lines() {
        let starts_entry = !line.starts_with([' ', '#', '}', '[', '*']) && line.contains(" = ");
        if starts_entry {
            let id = line.split(" = ").next().unwrap_or_default().to_string();
            current = (!id.starts_with('-')).then_some(id);
        } else if line.is_empty() || line.starts_with('#') {
            current = None;
        }
        let Some(id) = &current else { continue };
        let vars: &mut std::collections::BTreeSet<String> = out.entry(id.clone()).or_default();
        let pattern = if starts_entry {
            line.split_once(" = ").map_or("", |(_, p)| p)
        } else {
            line
        };
        for (at, _) in pattern.match_indices('$') {
            let name: String = pattern[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if !name.is_empty() {
                vars.insert(name);
            }
        }
    }
    out
}

const ZH_DIAGNOSTICS: &str = include_str!("../../locales/zh-CN/diagnostics.ftl");
const EN_DIAGNOSTICS: &str = include_str!("../../locales/en/diagnostics.ftl");

/// Every text the sources write (a finding's message and hint, a schedule's or a number
/// format's problem) exists in both languages and takes exactly the arguments the code gives:
/// a missing one would show as `{$name}`, an extra one would be lost.
#[test]
fn every_text_the_code_writes_exists_in_both_languages_with_its_arguments() {
    let used = texts_in_code();
    assert!(used.len() > 150, "the scan found only {used:#?}");
    let zh = variables(ZH_DIAGNOSTICS);
    let en = variables(EN_DIAGNOSTICS);
    for text in &used {
        for lang in Lang::ALL {
            assert!(
                lang.has(&text.id),
                "{} writes `{}`, which {lang:?} lacks",
                text.file,
                text.id
            );
        }
        let given: std::collections::BTreeSet<String> = text.args.iter().cloned().collect();
        assert_eq!(given.len(), text.args.len(), "{text:?} repeats an argument");
        for (lang, vars) in [("zh-CN", &zh), ("en", &en)] {
            assert_eq!(
                vars.get(&text.id),
                Some(&given),
                "{}: `{}` in {lang} takes other arguments than the code gives",
                text.file,
                text.id
            );
        }
    }
    // And every finding's message or hint in the files is one the code writes.
    for id in zh
        .keys()
        .filter(|id| id.starts_with("diag-") || id.starts_with("hint-"))
    {
        assert!(
            used.iter().any(|t| t.id == *id),
            "`{id}` is in diagnostics.ftl but no code writes it"
        );
    }
}

/// What Chinese readers get is Chinese: once what they type (`keys`, ids, YAML examples,
/// paths, quoted values) and the arguments are taken out, no English word is left.
#[test]
fn chinese_findings_have_no_english_prose() {
    // Names that stay as they are in Chinese text.
    const ALLOWED: [&str; 17] = [
        "YAML",
        "UTF",
        "UTC",
        "GBK",
        "HH",
        "MM",
        "YYYY",
        "DD",
        "README",
        "rhai",
        "JavaScript",
        "Rust",
        "Tab",
        "KB",
        "MiB",
        "ASCII",
        "id",
    ];
    let mut english = Vec::new();
    let mut checked = 0;
    for (id, _) in variables(ZH_DIAGNOSTICS) {
        if !(id.starts_with("diag-") || id.starts_with("hint-")) {
            continue;
        }
        let mut lines = ZH_DIAGNOSTICS
            .split('\n')
            .skip_while(|line| !line.starts_with(&format!("{id} = ")));
        let first = lines.next().unwrap_or_default();
        let rest = lines.take_while(|line| line.starts_with([' ', '}', '[', '*']));
        let pattern = std::iter::once(first)
            .chain(rest)
            .collect::<Vec<_>>()
            .join(" ");
        let prose = strip_literals(pattern.trim_start_matches(&format!("{id} = ")));
        for word in prose.split(|c: char| !c.is_ascii_alphabetic()) {
            if word.len() > 1 && !ALLOWED.contains(&word) {
                english.push(format!("`{id}` has `{word}`: {prose}"));
            }
        }
        checked += 1;
    }
    assert!(
        english.is_empty(),
        "English in Chinese findings:\n{}",
        english.join("\n")
    );
    assert!(checked > 150, "{checked}");
}

/// A pattern without what is not prose: `code spans`, placeables, quoted values, paths and
/// select variants' keys.
fn strip_literals(pattern: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut in_code = false;
    let mut in_quote = false;
    for c in pattern.chars() {
        match c {
            '{' if !in_code => depth += 1,
            '}' if !in_code && depth > 0 => depth -= 1,
            '`' if depth == 0 => in_code = !in_code,
            '"' if depth == 0 && !in_code => in_quote = !in_quote,
            _ if depth > 0 || in_code || in_quote => {}
            c => out.push(c),
        }
    }
    // Variant lines of a select sit inside its braces; what is left are words between them.
    out.split_whitespace()
        .filter(|token| !token.contains(['/', '.', '_', ':', '[', ']']))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One finding in both languages, through the one renderer: arguments, a suggestion within
/// the hint, a list joined as each language lists.
#[test]
fn a_finding_renders_in_each_language() {
    use crate::diagnostic::suggestion_text;
    let hint = text!(
        "hint-undeclared-role",
        suggestion = suggestion_text("cs_dpet", ["cs_dept", "gm"])
    );
    assert_eq!(
        Lang::En.render(&hint),
        "declare it under `roles:`, or did you mean `cs_dept`?"
    );
    assert_eq!(
        Lang::Zh.render(&hint),
        "在 `roles:` 下声明这个角色。是不是想写 `cs_dept`?"
    );
    let cycle = text!(
        "diag-closed-cycle",
        state = "a",
        states = Arg::list(["a", "b"])
    );
    assert!(Lang::En.render(&cycle).contains("a cycle of a, b with"));
    assert!(Lang::Zh.render(&cycle).contains("a、b 组成的闭环"));
    assert_eq!(
        cycle.to_string(),
        Lang::En.render(&cycle),
        "Display is English"
    );
    let silent = text!(
        "diag-not-snake-case",
        kind = text!("diag-kind-state"),
        name = "GmReview"
    );
    assert_eq!(
        Lang::Zh.render(&silent),
        "状态 `GmReview` 不是小写字母加下划线的标识符"
    );
}
