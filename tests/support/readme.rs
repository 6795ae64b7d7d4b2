//! Reading the README's shell blocks, for the tests that run them (`readme_cli`,
//! `readme_blocks`).

/// One command of a shell block.
pub struct Said {
    pub command: String,
    /// The first comment line after the command (what it prints), if any.
    pub prints: Option<String>,
    pub exit: i32,
}

/// A shell block's commands, continuation lines joined, each with the first comment line
/// after it (what the README says it prints) and the exit code that comment names (`(exit code
/// 3)`, else 0). A line defining a shell function (`sopflow() { ... }`) is not a command.
pub fn commands(block: &str) -> Vec<Said> {
    let mut out: Vec<Said> = Vec::new();
    let mut pending = String::new();
    let mut after_command = false;
    for line in block.lines() {
        if line.starts_with("sopflow() {") {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            if after_command && let Some(said) = out.last_mut() {
                let (text, exit) = match comment.split_once("(exit code ") {
                    Some((text, code)) => (
                        text.trim_end().to_string(),
                        code.trim_end_matches(')').parse().expect("an exit code"),
                    ),
                    None => (comment.to_string(), 0),
                };
                said.prints = Some(text);
                said.exit = exit;
            }
            after_command = false;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        pending.push_str(line.trim_end_matches('\\'));
        if line.ends_with('\\') {
            continue;
        }
        out.push(Said {
            command: std::mem::take(&mut pending),
            prints: None,
            exit: 0,
        });
        after_command = true;
    }
    out
}
