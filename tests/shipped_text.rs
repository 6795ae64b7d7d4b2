//! The shipped definitions speak the manuals' Chinese to the people who use them: every
//! `title` and `description` (a workflow's, a role's, a field's, a parameter's, a state's, an
//! event's, a timer's, a schedule's, a constraint's, a calendar's) and every role title of the
//! role list holds Chinese characters, no backticks and no English prose, and no description
//! cites the manual by line. Field descriptions are shown to front-desk clerks under the form inputs, parameter and
//! role descriptions to process owners on the workflow page and in docs/library/; the manual
//! lines and the engineering notes (who sets a field, which rule reads it) belong in YAML
//! comments, where the people who maintain the files read them.

use std::path::{Path, PathBuf};

mod support;

/// A `title` or `description` found in a file, with where it is.
struct Text {
    file: PathBuf,
    /// Where in the file, as keys and list indexes: `fields.sealed_at.description`.
    path: String,
    key: &'static str,
    value: String,
}

/// A Chinese (CJK unified ideograph) character.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}')
}

/// A manual line cited as in the comments, `L153` or `M5 L77`: an `L` that no letter, digit or
/// underscore precedes, followed by a digit.
fn cites_a_line(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(2).enumerate().any(|(i, w)| {
        w[0] == 'L'
            && w[1].is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_'))
    })
}

/// English prose, as engine notes are written: two Latin words in a row (`set by`). An
/// identifier alone (`visit 现场来访; phone 电话`, an enum's values explained) is not.
fn has_english_words(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(3)
        .any(|w| w[0].is_ascii_alphabetic() && w[1] == ' ' && w[2].is_ascii_alphabetic())
}

/// Every string under a `title` or `description` key, at any depth; and, in a `roles` map,
/// the titles given by shorthand (`order_dept: 秩序维护部`), as the role list and the
/// workflows write them.
fn collect(file: &Path, value: &serde_json::Value, path: &str, out: &mut Vec<Text>) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = join(key);
                match (key.as_str(), child) {
                    ("title", Value::String(s)) | ("description", Value::String(s)) => {
                        out.push(Text {
                            file: file.to_path_buf(),
                            path: here.clone(),
                            key: if key == "title" {
                                "title"
                            } else {
                                "description"
                            },
                            value: s.clone(),
                        });
                    }
                    ("roles", Value::Object(roles)) => {
                        for (role, spec) in roles {
                            if let Value::String(title) = spec {
                                out.push(Text {
                                    file: file.to_path_buf(),
                                    path: format!("{here}.{role}"),
                                    key: "title",
                                    value: title.clone(),
                                });
                            }
                        }
                    }
                    _ => {}
                }
                collect(file, child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(file, item, &join(&i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// The titles and descriptions of every YAML file of the shipped definition folders
/// (workflows, the role list, calendars).
fn shipped_texts() -> Vec<Text> {
    let mut files: Vec<PathBuf> = support::shipped_sources()
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("a shipped folder").flatten())
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut texts = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a shipped file");
        let yaml: serde_json::Value =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        collect(file, &yaml, "", &mut texts);
    }
    texts
}

#[test]
fn every_shipped_title_and_description_is_chinese_without_engine_notes() {
    let texts = shipped_texts();
    let count = |key: &str| texts.iter().filter(|t| t.key == key).count();
    // All of them are found: the library has hundreds of titles and some 200 descriptions.
    assert!(
        count("title") > 1000,
        "only {} titles found",
        count("title")
    );
    assert!(
        count("description") > 150,
        "only {} descriptions found",
        count("description")
    );
    assert!(
        texts
            .iter()
            .any(|t| t.path == "fields.notification_letter.description"
                && t.file.ends_with("workflows/hot_work_permit.yaml")),
        "the field descriptions are read"
    );
    assert!(
        texts.iter().any(|t| t.path == "roles.order_dept"
            && t.file.ends_with("workflows/roles.yaml")
            && t.value == "秩序维护部"),
        "the role list's titles are read"
    );

    let mut problems = Vec::new();
    for t in &texts {
        let mut wrong = Vec::new();
        if !t.value.chars().any(is_cjk) {
            wrong.push("no Chinese");
        }
        if t.value.contains('`') {
            wrong.push("a backtick");
        }
        if has_english_words(&t.value) {
            wrong.push("English words");
        }
        if t.key == "description" && cites_a_line(&t.value) {
            wrong.push("a manual line (cite it in a comment)");
        }
        if !wrong.is_empty() {
            problems.push(format!(
                "{}: {}: {} in {:?}",
                t.file.display(),
                t.path,
                wrong.join(", "),
                t.value
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "titles and descriptions are for the people who use them, in the manual's Chinese; \
         manual lines and engineering notes go in a YAML comment above:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_is_for() {
    assert!(
        !"Reference of the uploaded letter (L153)."
            .chars()
            .any(is_cjk)
    );
    assert!("上传的动火告知函编号".chars().any(is_cjk));
    assert!(cites_a_line("手册原文 (L153)"));
    assert!(cites_a_line("M5 L77"));
    assert!(cites_a_line("L28"));
    assert!(!cites_a_line("URL1 和 CRML2"));
    assert!(!cites_a_line("工作量 660个"));
    assert!(has_english_words(
        "手册未写明; default 3, set by the process owner"
    ));
    assert!(!has_english_words(
        "visit 现场来访; phone 电话; online 网络/邮件/短信。"
    ));
    assert!(!has_english_words("售后服务先行赔偿 模板 (template)"));
    let mut out = Vec::new();
    let yaml: serde_json::Value = serde_saphyr::from_str(
        "title: 标题\nroles: {a: 甲, b: {description: Set by `x`}}\nstates: [{title: t}]\n",
    )
    .expect("YAML");
    collect(Path::new("x.yaml"), &yaml, "", &mut out);
    let mut found: Vec<(&str, &str)> = out.iter().map(|t| (t.path.as_str(), t.key)).collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("roles.a", "title"),
            ("roles.b.description", "description"),
            ("states.0.title", "title"),
            ("title", "title"),
        ]
    );
}
