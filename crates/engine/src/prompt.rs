//! Recognising what a program is waiting for from the line the cursor sits on.
//!
//! This is the heuristic half of completion detection: when the bottom of the screen looks like
//! a prompt, a short confirming quiet is enough to call the program idle; otherwise only a
//! longer quiet period is.

/// What the line at the cursor asks of the person at the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A shell or REPL prompt: `$ `, `# `, `>>> `, `mysql> `, `(Pdb) `…
    Shell,
    /// A password or passphrase prompt.
    Password,
    /// A login or user-name prompt.
    Login,
    /// A yes/no question.
    Confirmation,
    /// A pager waiting for a key: `--More--`, `(END)`, `lines 1-40`.
    Pager,
}

/// Classifies `line`, the text of the cursor's row up to the cursor.
pub fn classify(line: &str) -> Option<PromptKind> {
    let trimmed = line.trim_end();
    if trimmed.is_empty() {
        return None;
    }
    let lower = trimmed.to_lowercase();
    if is_password(&lower) {
        return Some(PromptKind::Password);
    }
    if is_confirmation(&lower) {
        return Some(PromptKind::Confirmation);
    }
    if is_pager(trimmed, &lower) {
        return Some(PromptKind::Pager);
    }
    if lower.ends_with("login:") || lower.ends_with("username:") || lower.ends_with("user name:") {
        return Some(PromptKind::Login);
    }
    if is_shell(line, trimmed, &lower) {
        return Some(PromptKind::Shell);
    }
    None
}

fn is_password(lower: &str) -> bool {
    let Some(head) = lower.strip_suffix(':') else {
        return false;
    };
    head.len() < 120 && ["password", "passphrase", "passcode", "pin", "secret"].iter().any(|w| head.contains(w))
}

fn is_confirmation(lower: &str) -> bool {
    const MARKS: [&str; 7] = ["[y/n]", "(y/n)", "[yes/no]", "(yes/no)", "(yes/no/[fingerprint])", "[y/n/q]", "(y/n/a)"];
    let lower = lower.trim_end_matches(['?', ':', ' ']);
    MARKS.iter().any(|m| lower.ends_with(m)) || lower.ends_with("continue connecting")
}

fn is_pager(trimmed: &str, lower: &str) -> bool {
    lower.contains("--more--")
        || trimmed == "(END)"
        || trimmed == ":"
        || lower.ends_with("(end)")
        || (lower.starts_with("lines ") && lower.chars().any(|c| c.is_ascii_digit()) && lower.contains('-'))
        || lower.starts_with("manual page ")
}

fn is_shell(line: &str, trimmed: &str, lower: &str) -> bool {
    // Python's prompts stand alone on their line; "Loading..." is output, not a prompt.
    if trimmed == ">>>" || trimmed == "..." {
        return true;
    }
    // REPLs with their own prompt words.
    const REPLS: [&str; 8] = ["mysql>", "postgres=#", "(pdb)", "irb(main)", "sqlite>", "ftp>", "redis>", "=>"];
    if REPLS.iter().any(|p| lower.ends_with(p)) || lower.starts_with("in [") && lower.ends_with("]:") {
        return true;
    }
    // `psql`'s `dbname=#` / `dbname=>`, router prompts `switch#`, `R1(config)#`.
    let last = trimmed.chars().last().unwrap_or(' ');
    if !matches!(last, '$' | '#' | '%' | '>' | ']') {
        return false;
    }
    // A shell prompt is short and is followed by a space in nearly every configuration; a bare
    // `#` or `>` at the end of a long line is more likely output. Router prompts have no space.
    let spaced = line.len() > trimmed.len();
    let short = trimmed.chars().count() <= 80;
    short && (spaced || trimmed.chars().all(|c| !c.is_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PromptKind::*;

    #[test]
    fn shells_and_repls() {
        for p in [
            "user@host:~$ ",
            "root@box:/tmp# ",
            "% ",
            "bash-5.2$ ",
            ">>> ",
            "... ",
            "mysql> ",
            "(Pdb) ",
            "switch>",
            "R1(config)#",
            "In [3]: ",
        ] {
            assert_eq!(classify(p), Some(Shell), "{p:?}");
        }
    }

    #[test]
    fn questions_and_pagers() {
        assert_eq!(classify("[sudo] password for admin: "), Some(Password));
        assert_eq!(classify("Password:"), Some(Password));
        assert_eq!(classify("Enter passphrase for key '/k': "), Some(Password));
        assert_eq!(classify("Continue? [y/N] "), Some(Confirmation));
        assert_eq!(
            classify("Are you sure you want to continue connecting (yes/no/[fingerprint])? "),
            Some(Confirmation)
        );
        assert_eq!(classify(" --More-- "), Some(Pager));
        assert_eq!(classify("(END)"), Some(Pager));
        assert_eq!(classify("lines 1-40"), Some(Pager));
        assert_eq!(classify("login: "), Some(Login));
        assert_eq!(classify("Username: "), Some(Login));
    }

    #[test]
    fn ordinary_output_is_not_a_prompt() {
        for l in [
            "",
            "hello world",
            "compiling 3 of 10",
            "total 42",
            "a long sentence that happens to end with a hash sign, see issue #",
        ] {
            assert_eq!(classify(l), None, "{l:?}");
        }
    }
}
