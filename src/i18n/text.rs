//! Words for a person before a language is chosen: a message id and its named arguments.
//!
//! The core says *what* to tell someone ([`Text`]); the edge, which knows who reads it,
//! renders it with [`Lang::render`](super::Lang::render), the one place that turns a text into
//! words. A validation finding carries its message and hint this way, so that the CLI, the
//! server's startup report, the console and the API each give it in their reader's language,
//! while programs keep matching its stable code.

use std::fmt;

/// A sentence not yet in a language: the id of a message of the Fluent files
/// (`locales/*/*.ftl`) and the values of its `$arguments`.
///
/// Written in code with the crate's `text!` macro, `text!("diag-unknown-state", state = name)`,
/// so that a test can read every id and argument name from the sources and hold both
/// languages' files to them. Its `Display` is the English rendering, for logs and errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Text {
    id: &'static str,
    args: Vec<(&'static str, Arg)>,
}

/// The value of one argument of a [`Text`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Arg {
    /// Words shown as they are: an id, a path, a title, a value from the file, another
    /// program's own message.
    Plain(String),
    /// A whole number, which a message may choose its words by.
    Number(i64),
    /// Items the language joins its own way (`a, b` in English, `a、b` in Chinese).
    List(Vec<Arg>),
    /// Another text, rendered in the same language first.
    Text(Box<Text>),
}

impl Text {
    /// The message `id` with no arguments yet.
    pub fn new(id: &'static str) -> Text {
        Text {
            id,
            args: Vec::new(),
        }
    }

    /// With the argument `$name`.
    #[must_use]
    pub fn with(mut self, name: &'static str, value: impl Into<Arg>) -> Text {
        self.args.push((name, value.into()));
        self
    }

    /// The message id.
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The arguments, in the order given.
    pub fn args(&self) -> &[(&'static str, Arg)] {
        &self.args
    }
}

impl Arg {
    /// Items joined as the reader's language lists them.
    pub fn list<A: Into<Arg>>(items: impl IntoIterator<Item = A>) -> Arg {
        Arg::List(items.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Text {
    /// The English rendering, for logs, errors and programs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::Lang::En.render(self))
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Arg {
        Arg::Plain(value.to_string())
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Arg {
        Arg::Plain(value)
    }
}

impl From<&String> for Arg {
    fn from(value: &String) -> Arg {
        Arg::Plain(value.clone())
    }
}

impl From<Text> for Arg {
    fn from(value: Text) -> Arg {
        Arg::Text(Box::new(value))
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(value: $t) -> Arg {
                Arg::Number(i64::try_from(value).unwrap_or(i64::MAX))
            }
        }
    )*};
}

numbers!(i32, i64, u32, u64, usize);

/// A [`Text`]: `text!("id", name = value, ...)`. The id and the argument names are literals,
/// which the i18n tests read from the sources to check both languages' message files.
macro_rules! text {
    ($id:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::Text::new($id)$(.with(stringify!($name), $value))*
    };
}

pub(crate) use text;
