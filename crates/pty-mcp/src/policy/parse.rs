//! What a shell will run, from the text typed at it: every line, every command of a list or a
//! pipeline (split at `;`, `&&`, `||`, `|`, `&`), the commands inside `$( )` and backticks, and
//! one level (or a few) of the programs that run another command: `sh -c`/`bash -c`/`zsh -c`,
//! `ssh host 'cmd'`, `sudo`, `env X=1`, `nohup`, `exec`, `xargs`, `time`, `nice`, `command`.
//! Each command comes out as its words after shell-style unquoting, joined by single spaces, so
//! that `'rm'  -rf  /` and `rm -rf /` read the same to a rule.
//!
//! Text that cannot be split for sure (an unclosed quote or substitution) is reported as such:
//! the policy then treats it strictly.

/// How deep wrappers and substitutions are followed (`sudo sh -c "$(…)"` is three).
const MAX_DEPTH: usize = 4;

/// One command the shell would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its words, unquoted, joined by single spaces.
    pub text: String,
    /// The text could not be split for sure (this is the raw text).
    pub unparsed: bool,
}

/// Every command in `script`, in order, the wrapped ones after their wrappers.
pub fn segments(script: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    collect(script, 0, &mut out);
    out
}

fn collect(script: &str, depth: usize, out: &mut Vec<Segment>) {
    let lexed = match lex(script) {
        Ok(lexed) => lexed,
        Err(()) => {
            out.push(Segment { text: script.trim().to_string(), unparsed: true });
            return;
        }
    };
    for inner in &lexed.substitutions {
        if depth < MAX_DEPTH {
            collect(inner, depth + 1, out);
        } else {
            out.push(Segment { text: inner.trim().to_string(), unparsed: true });
        }
    }
    for words in lexed.commands {
        let words = unwrap(&words);
        if words.is_empty() {
            continue;
        }
        // A program is known by its name wherever it lives (`/sbin/reboot` is `reboot`).
        let name = words[0].rsplit('/').next().unwrap_or(&words[0]);
        let text = std::iter::once(name).chain(words[1..].iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
        out.push(Segment { text, unparsed: false });
        if let Some(script) = inner_script(&words) {
            if depth < MAX_DEPTH {
                collect(&script, depth + 1, out);
            } else {
                out.push(Segment { text: script, unparsed: true });
            }
        }
    }
}

/// A script split into commands (each its unquoted words) and the text of its substitutions.
struct Lexed {
    commands: Vec<Vec<String>>,
    substitutions: Vec<String>,
}

/// Splits `script` like a POSIX shell's tokenizer would, as far as a policy needs: quotes,
/// backslashes, comments, control operators, `$( )` and backticks. Err for text that ends
/// inside a quote or a substitution.
fn lex(script: &str) -> Result<Lexed, ()> {
    let chars: Vec<char> = script.chars().collect();
    let mut lexed = Lexed { commands: Vec::new(), substitutions: Vec::new() };
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    let end_word = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    let end_command = |words: &mut Vec<String>, commands: &mut Vec<Vec<String>>| {
        if !words.is_empty() {
            commands.push(std::mem::take(words));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => {}
                    Some(&next) => {
                        word.push(next);
                        in_word = true;
                    }
                    None => {}
                }
                i += 2;
                continue;
            }
            '\'' => {
                let close = chars[i + 1..].iter().position(|&c| c == '\'').ok_or(())?;
                word.extend(&chars[i + 1..i + 1 + close]);
                in_word = true;
                i += close + 2;
                continue;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(()),
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        Some('$') if chars.get(i + 1) == Some(&'(') => {
                            let (inner, next) = substitution(&chars, i + 2)?;
                            word.push_str(&format!("$({inner})"));
                            lexed.substitutions.push(inner);
                            i = next;
                        }
                        Some('`') => {
                            let close = chars[i + 1..].iter().position(|&c| c == '`').ok_or(())?;
                            let inner: String = chars[i + 1..i + 1 + close].iter().collect();
                            word.push_str(&format!("`{inner}`"));
                            lexed.substitutions.push(inner);
                            i += close + 2;
                        }
                        Some(&c) => {
                            word.push(c);
                            i += 1;
                        }
                    }
                }
                in_word = true;
                i += 1;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let (inner, next) = substitution(&chars, i + 2)?;
                word.push_str(&format!("$({inner})"));
                lexed.substitutions.push(inner);
                in_word = true;
                i = next;
                continue;
            }
            '`' => {
                let close = chars[i + 1..].iter().position(|&c| c == '`').ok_or(())?;
                let inner: String = chars[i + 1..i + 1 + close].iter().collect();
                word.push_str(&format!("`{inner}`"));
                lexed.substitutions.push(inner);
                in_word = true;
                i += close + 2;
                continue;
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ';' | '&' | '|' | '\n' | '\r' => {
                end_word(&mut word, &mut in_word, &mut words);
                end_command(&mut words, &mut lexed.commands);
            }
            // Subshells, groups and process substitutions: their commands are commands like the
            // others. (A brace inside a word is brace expansion, not a group.)
            '(' | ')' => {
                end_word(&mut word, &mut in_word, &mut words);
                end_command(&mut words, &mut lexed.commands);
            }
            '{' | '}' if !in_word => {
                end_word(&mut word, &mut in_word, &mut words);
                end_command(&mut words, &mut lexed.commands);
            }
            c if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut words),
            c => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut words);
    end_command(&mut words, &mut lexed.commands);
    Ok(lexed)
}

/// The text of a `$( … )` whose body starts at `from`, and the index after its `)`; Err when
/// it is not closed. Nested parentheses and quotes inside are skipped over.
fn substitution(chars: &[char], from: usize) -> Result<(String, usize), ()> {
    let mut depth = 1;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '\'' => i += chars[i + 1..].iter().position(|&c| c == '\'').ok_or(())? + 1,
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(());
                }
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((chars[from..i].iter().collect(), i + 1));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(())
}

/// The command itself, past what only sets up how it runs: variable assignments, and the
/// wrappers `sudo`, `env`, `nohup`, `exec`, `xargs`, `time`, `nice`, `command`, `builtin`
/// with their options.
fn unwrap(words: &[String]) -> Vec<String> {
    let mut rest = words;
    loop {
        let Some(first) = rest.first() else { return Vec::new() };
        let name = first.rsplit('/').next().unwrap_or(first);
        let skip = if is_assignment(first) {
            1
        } else {
            match name {
                "sudo" | "doas" => 1 + options(&rest[1..], &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"]),
                "env" => {
                    let n = 1 + options(&rest[1..], &["-u", "-C", "-S"]);
                    n + rest[n..].iter().take_while(|w| is_assignment(w)).count()
                }
                "nohup" | "exec" | "time" | "command" | "builtin" => 1 + options(&rest[1..], &["-a"]),
                "nice" => 1 + options(&rest[1..], &["-n"]),
                "xargs" => 1 + options(&rest[1..], &["-I", "-L", "-n", "-P", "-s", "-d", "-E", "-a"]),
                _ => 0,
            }
        };
        if skip == 0 {
            return rest.to_vec();
        }
        rest = &rest[skip.min(rest.len())..];
    }
}

/// How many leading words are options (those in `with_value` take the next word too).
fn options(words: &[String], with_value: &[&str]) -> usize {
    let mut n = 0;
    while let Some(w) = words.get(n) {
        if w == "--" {
            return n + 1;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        n += if with_value.contains(&w.as_str()) { 2 } else { 1 };
    }
    n.min(words.len())
}

/// `NAME=value`.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// Whether `command` only starts an interactive shell (`bash`, `/bin/zsh -l`): no script, no
/// `-c`. What is typed into it is checked as it is typed.
pub fn is_interactive_shell(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    let Some(first) = words.first() else { return false };
    let name = first.rsplit('/').next().unwrap_or(first);
    ["sh", "bash", "zsh", "dash", "ksh", "fish", "ash"].contains(&name)
        && words[1..].iter().all(|w| w.starts_with('-') && (w.starts_with("--") || !w.contains('c')))
}

/// The script a command runs in another shell: `sh -c 'script'` (bash, zsh, dash, ksh,
/// fish too), or the remote command of `ssh [options] host command…`.
fn inner_script(words: &[String]) -> Option<String> {
    let name = words[0].rsplit('/').next().unwrap_or(&words[0]);
    match name {
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "fish" | "ash" => {
            // The first word after an option cluster holding `c` is the script.
            let at = words.iter().position(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('c'))?;
            words.get(at + 1).cloned()
        }
        "ssh" => {
            const WITH_VALUE: &[&str] = &[
                "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-Q", "-R",
                "-S", "-W", "-w", "-B", "-P",
            ];
            let host = 1 + options(&words[1..], WITH_VALUE);
            let command = &words.get(host + 1..)?;
            (!command.is_empty()).then(|| command.join(" "))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(script: &str) -> Vec<String> {
        segments(script).into_iter().map(|s| if s.unparsed { format!("?{}", s.text) } else { s.text }).collect()
    }

    #[test]
    fn lists_pipelines_and_lines_are_split() {
        assert_eq!(texts("echo a; rm -rf / && ls || true"), ["echo a", "rm -rf /", "ls", "true"]);
        assert_eq!(texts("cat x | grep y & sleep 1\nreboot"), ["cat x", "grep y", "sleep 1", "reboot"]);
        assert_eq!(texts("   reboot  "), ["reboot"]);
        assert_eq!(texts("(cd /; rm -rf .)"), ["cd /", "rm -rf ."]);
        assert_eq!(texts("diff <(reboot) x"), ["diff <", "reboot", "x"]);
        assert_eq!(texts("echo a{b,c}"), ["echo a{b,c}"]);
    }

    #[test]
    fn quotes_and_escapes_are_undone() {
        assert_eq!(texts(r#"'rm'  -rf   "/""#), ["rm -rf /"]);
        assert_eq!(texts(r"r\m -rf /"), ["rm -rf /"]);
        assert_eq!(texts("echo 'a;b' \"c|d\""), ["echo a;b c|d"]);
        assert_eq!(texts("echo hi # ; reboot"), ["echo hi"]);
    }

    #[test]
    fn substitutions_and_wrappers_are_looked_into() {
        assert_eq!(texts("echo $(reboot)"), ["reboot", "echo $(reboot)"]);
        assert_eq!(texts("echo `reboot`"), ["reboot", "echo `reboot`"]);
        assert_eq!(texts("echo \"$(rm -rf /)\""), ["rm -rf /", "echo $(rm -rf /)"]);
        assert_eq!(texts("sh -c 'rm -rf /'"), ["sh -c rm -rf /", "rm -rf /"]);
        assert_eq!(texts("bash -lc \"reboot; ls\""), ["bash -lc reboot; ls", "reboot", "ls"]);
        assert_eq!(texts("sudo -u root env A=1 B=2 nohup reboot"), ["reboot"]);
        assert_eq!(texts("A=1 reboot"), ["reboot"]);
        assert_eq!(texts("ssh -p 22 prod1 'sudo reboot'"), ["ssh -p 22 prod1 sudo reboot", "reboot"]);
        assert_eq!(texts("find / | xargs -n 1 rm -rf"), ["find /", "rm -rf"]);
        assert_eq!(texts("/usr/bin/sudo /sbin/reboot"), ["reboot"]);
    }

    #[test]
    fn a_bare_shell_is_told_from_one_running_a_script() {
        assert!(is_interactive_shell("/bin/bash"));
        assert!(is_interactive_shell("bash --norc --noprofile -l"));
        assert!(!is_interactive_shell("bash -c 'rm -rf /'"));
        assert!(!is_interactive_shell("bash -lc x"));
        assert!(!is_interactive_shell("sh deploy.sh"));
        assert!(!is_interactive_shell("python3"));
    }

    #[test]
    fn unclosed_text_is_reported_unparsed() {
        assert_eq!(texts("echo 'rm -rf /"), ["?echo 'rm -rf /"]);
        assert_eq!(texts("echo $(reboot"), ["?echo $(reboot"]);
    }

    #[test]
    fn a_huge_paste_is_split() {
        // One pass over the text (the bench measures it).
        let paste = "echo line; ls -l | wc -l\n".repeat(10_000);
        assert_eq!(segments(&paste).len(), 30_000);
    }
}
