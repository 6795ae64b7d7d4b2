//! The words people read, in their language: Chinese first, English second.
//!
//! The messages live in Fluent files (`locales/zh-CN/*.ftl`, `locales/en/*.ftl`), compiled
//! into the binary, so that a translator edits text without touching code and a message's
//! grammar (word order, measure words) belongs to its language. Programs keep reading stable
//! codes (a refusal's `code`, a diagnostic's `E005`); people read [`Lang::text`].
//!
//! Which language a person gets is decided at the edge: the console's setting or the request's
//! `Accept-Language` ([`Lang::from_accept_language`]), the CLI's `--lang` or `LANG`
//! ([`Lang::from_locale`]). The core never chooses one.

mod migration;
mod refusal;
mod text;

pub use migration::{blocker_text, plan_lines};
pub use refusal::{Explain, event_title, explain};
pub(crate) use text::text;
pub use text::{Arg, Text};

use crate::diagnostic::{Code, Severity};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use std::sync::LazyLock;

/// A language sopflow speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 简体中文: the manuals' language, and the default.
    #[default]
    Zh,
    /// English.
    En,
}

/// The message files of each language, in the order they are loaded.
const ZH: &[&str] = &[
    include_str!("../../locales/zh-CN/refusals.ftl"),
    include_str!("../../locales/zh-CN/diagnostics.ftl"),
    include_str!("../../locales/zh-CN/console.ftl"),
    include_str!("../../locales/zh-CN/migration.ftl"),
];
const EN: &[&str] = &[
    include_str!("../../locales/en/refusals.ftl"),
    include_str!("../../locales/en/diagnostics.ftl"),
    include_str!("../../locales/en/console.ftl"),
    include_str!("../../locales/en/migration.ftl"),
];

/// The most `Accept-Language` items looked at: the header is the client's to fill.
const MAX_ACCEPT_ITEMS: usize = 16;

/// Both languages' messages, parsed once. Immutable data compiled into the binary, like a
/// table of constants: no state is shared through it.
static BUNDLES: LazyLock<[FluentBundle<FluentResource>; 2]> =
    LazyLock::new(|| [bundle("zh-CN", ZH), bundle("en", EN)]);

fn bundle(tag: &str, files: &[&str]) -> FluentBundle<FluentResource> {
    let id = tag.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Isolation marks (U+2068/U+2069) around arguments help right-to-left scripts; in Chinese
    // and English they only show up as stray characters in terminals and CSV cells.
    bundle.set_use_isolating(false);
    for text in files {
        // A message file with a syntax error still yields the messages it could read; the
        // test `every_message_file_parses` keeps the shipped files clean.
        let resource = FluentResource::try_new(text.to_string()).unwrap_or_else(|(r, _)| r);
        let _ = bundle.add_resource(resource);
    }
    bundle
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The BCP 47 tag (`zh-CN`, `en`), for `<html lang>` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language a tag or locale names: `zh`, `zh-CN`, `zh_TW.UTF-8`, `en`, `en-US`...;
    /// `None` for any other.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag
            .trim()
            .split(['-', '_', '.', '@'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language a process's locale asks for (`LC_ALL`, then `LC_MESSAGES`, then `LANG`, as
    /// POSIX orders them), given a way to read the environment; `None` when none names a
    /// language sopflow speaks (`C`, `POSIX`, unset).
    pub fn from_locale(var: impl Fn(&str) -> Option<String>) -> Option<Lang> {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .into_iter()
            .filter_map(var)
            .find(|v| !v.is_empty())
            .and_then(|v| Lang::parse(&v))
    }

    /// The language an `Accept-Language` header prefers (RFC 9110 §12.5.4): the highest
    /// weight among the languages sopflow speaks, the earlier on a tie; `None` when it names
    /// neither.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, u16)> = None;
        for item in header.split(',').take(MAX_ACCEPT_ITEMS) {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, quality);
            if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
                best = Some((lang, weight));
            }
        }
        best.map(|(lang, _)| lang)
    }

    /// The message `id` in this language.
    pub fn text(self, id: &str) -> String {
        self.text_with(id, &[])
    }

    /// The message `id` in this language with its arguments. A message this language lacks
    /// falls back to the other language, then to the id itself, so a gap in a translation
    /// never hides what happened.
    pub fn text_with(self, id: &str, args: &[(&str, &str)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            fluent_args.set(*name, *value);
        }
        self.format(id, &fluent_args)
    }

    /// The message `id` with a count `$n`, passed as a number so that a message can choose
    /// its words by it (`{ $n -> [one] … *[other] … }`), and other arguments.
    pub fn count(self, id: &str, n: i64, args: &[(&str, &str)]) -> String {
        let mut fluent_args = FluentArgs::new();
        fluent_args.set("n", n);
        for (name, value) in args {
            fluent_args.set(*name, *value);
        }
        self.format(id, &fluent_args)
    }

    /// A [`Text`] in this language: the one place a text becomes words. Its arguments are
    /// rendered first (a list joined as this language lists, a text within a text in this
    /// language too).
    pub fn render(self, text: &Text) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in text.args() {
            match value {
                Arg::Number(n) => fluent_args.set(*name, *n),
                other => fluent_args.set(*name, self.render_arg(other)),
            }
        }
        self.format(text.id(), &fluent_args)
    }

    fn render_arg(self, arg: &Arg) -> String {
        match arg {
            Arg::Plain(plain) => plain.clone(),
            Arg::Number(n) => n.to_string(),
            Arg::List(items) => {
                let items: Vec<String> = items.iter().map(|item| self.render_arg(item)).collect();
                self.list(&items)
            }
            Arg::Text(inner) => self.render(inner),
        }
    }

    /// Whether this language's own files have the message `id` (no fallback).
    pub fn has(self, id: &str) -> bool {
        BUNDLES[self.index()].has_message(id)
    }

    fn index(self) -> usize {
        match self {
            Lang::Zh => 0,
            Lang::En => 1,
        }
    }

    fn format(self, id: &str, args: &FluentArgs) -> String {
        let order = match self {
            Lang::Zh => [0, 1],
            Lang::En => [1, 0],
        };
        for index in order {
            let bundle = &BUNDLES[index];
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle
                    .format_pattern(pattern, Some(args), &mut errors)
                    .into_owned();
            }
        }
        id.to_string()
    }

    /// A diagnostic code's short name (`未知的键`, `unknown key`).
    pub fn code_title(self, code: Code) -> String {
        self.text(&format!("code-{}", code.as_str()))
    }

    /// What a diagnostic code means, in one sentence.
    pub fn code_meaning(self, code: Code) -> String {
        self.text(&format!("code-{}-meaning", code.as_str()))
    }

    /// A severity's word (`错误`, `error`).
    pub fn severity(self, severity: Severity) -> String {
        self.text(match severity {
            Severity::Error => "severity-error",
            Severity::Warning => "severity-warning",
        })
    }

    /// Items joined as this language lists them (`、` in Chinese, `, ` in English).
    pub fn list<S: AsRef<str>>(self, items: &[S]) -> String {
        let separator = self.text("list-separator");
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(&separator)
    }
}

/// A `q=` weight in thousandths: `q=0.8` is 800; anything malformed weighs nothing.
fn quality(text: &str) -> u16 {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    match whole {
        "1" if fraction.bytes().all(|b| b == b'0') => 1000,
        "0" => format!("{fraction:0<3}").parse().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
