//! The policy file (`policy.toml`) and its presets, compiled into rules that are tried in order.
//!
//! ```toml
//! default = "allow"              # allow | ask | deny: for a command no rule matches
//! include = ["destructive"]      # presets, after the file's own rules
//! approval = "operator"          # operator (out of band, the default) | client (MCP elicitation)
//! approval_timeout = 60          # seconds the operator has to answer; then: denied
//! remember_approval = 0          # seconds an approval holds for the same command in the same session
//! [[rule]]
//! action = "deny"
//! match = 'rm\s+-rf\s+/'          # regex on one command, its words unquoted and single-spaced
//! targets = ["prod*", "local"]   # globs on the session's target (optional: every target)
//! programs = ["shell"]           # only at a shell's prompt (optional, default ["*"]: wherever typed)
//! reason = "never wipe a root"
//! [[path]]                       # file transfers (upload_file, download_file)
//! action = "deny"
//! paths = ["/etc/*"]             # globs on the absolute path (* crosses /)
//! direction = "upload"           # upload | download | any (the default)
//! targets = ["prod*"]
//! reason = "configuration goes through the change process"
//! ```
//! A transfer no `[[path]]` rule matches gets `default`.

use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

/// What happens to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }
}

/// Who approves an `ask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// The operator, outside the agent (`PTY_MCP_APPROVE`, a dialog, the terminal).
    #[default]
    Operator,
    /// The MCP client's own prompt (elicitation): weaker, the agent's host may answer it.
    Client,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "allow")]
    default: Action,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    approval: Approval,
    #[serde(default = "sixty")]
    approval_timeout: u64,
    #[serde(default)]
    remember_approval: u64,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
    #[serde(default, rename = "path")]
    paths: Vec<PathRuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathRuleFile {
    action: Action,
    paths: Vec<String>,
    direction: Option<String>,
    targets: Option<Vec<String>>,
    reason: Option<String>,
}

fn allow() -> Action {
    Action::Allow
}

fn sixty() -> u64 {
    60
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    action: Action,
    #[serde(rename = "match")]
    pattern: String,
    targets: Option<Vec<String>>,
    programs: Option<Vec<String>>,
    reason: Option<String>,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub action: Action,
    pattern: Regex,
    /// Globs on the target, as regexes (empty: every target).
    targets: Vec<Regex>,
    /// Only at a shell's prompt.
    shell_only: bool,
    pub reason: Option<String>,
    /// Where it comes from: `rule 2`, `preset destructive`.
    pub name: String,
}

impl Rule {
    /// Whether the rule applies to `command`, typed into a session known as `targets`.
    pub fn matches(&self, command: &str, targets: &[String], at_shell: bool) -> bool {
        (!self.shell_only || at_shell) && self.names_any(targets) && self.pattern.is_match(command)
    }

    /// Whether the rule applies to a session known as any of `targets`.
    pub fn names_any(&self, targets: &[String]) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|g| targets.iter().any(|t| g.is_match(t)))
    }
}

/// One compiled `[[path]]` rule.
#[derive(Debug)]
pub struct PathRule {
    pub action: Action,
    /// Globs on the absolute path, as regexes.
    paths: Vec<Regex>,
    /// `upload`, `download`, or None for both.
    direction: Option<&'static str>,
    targets: Vec<Regex>,
    pub reason: Option<String>,
    /// `path 1`, `preset read-only`.
    pub name: String,
}

impl PathRule {
    /// Whether the rule applies to moving `path` that way on a session known as `targets`.
    pub fn matches(&self, direction: &str, path: &str, targets: &[String]) -> bool {
        self.direction.is_none_or(|d| d == direction)
            && (self.targets.is_empty() || self.targets.iter().any(|g| targets.iter().any(|t| g.is_match(t))))
            && self.paths.iter().any(|g| g.is_match(path))
    }
}

/// A compiled policy.
#[derive(Debug)]
pub struct Rules {
    pub default: Action,
    pub rules: Vec<Rule>,
    /// Rules for file transfers, tried in order.
    pub paths: Vec<PathRule>,
    pub approval: Approval,
    pub approval_timeout: Duration,
    pub remember_approval: Duration,
    /// The presets included, for display.
    pub presets: Vec<String>,
}

/// Reads a policy from its text.
///
/// # Errors
/// A TOML error, an unknown preset, a regex or glob that does not compile: named precisely.
pub fn parse(text: &str) -> Result<Rules, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut rules = Vec::new();
    for (i, r) in file.rules.into_iter().enumerate() {
        let name = format!("rule {}", i + 1);
        let pattern = Regex::new(&r.pattern).map_err(|e| format!("{name}: match: {e}"))?;
        let targets = r.targets.unwrap_or_default().iter().map(|g| glob(g)).collect();
        let programs = r.programs.unwrap_or_else(|| vec!["*".into()]);
        let shell_only = match programs.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["shell"] => true,
            p if p.contains(&"*") => false,
            other => return Err(format!("{name}: programs must be [\"shell\"] or [\"*\"], not {other:?}")),
        };
        rules.push(Rule { action: r.action, pattern, targets, shell_only, reason: r.reason, name });
    }
    for preset in &file.include {
        let list = match preset.as_str() {
            "destructive" => DESTRUCTIVE,
            "read-only" => READ_ONLY,
            other => return Err(format!("include: no preset {other:?} (there are \"destructive\" and \"read-only\")")),
        };
        for (action, pattern, reason) in list {
            let pattern = Regex::new(pattern).map_err(|e| format!("preset {preset}: {e}"))?;
            let name = format!("preset {preset}");
            let reason = Some((*reason).to_string());
            rules.push(Rule { action: *action, pattern, targets: Vec::new(), shell_only: false, reason, name });
        }
    }
    let mut paths = Vec::new();
    for (i, r) in file.paths.into_iter().enumerate() {
        let name = format!("path {}", i + 1);
        let direction = match r.direction.as_deref() {
            None | Some("any") => None,
            Some("upload") => Some("upload"),
            Some("download") => Some("download"),
            Some(other) => return Err(format!("{name}: direction {other:?}: use upload, download or any")),
        };
        if r.paths.is_empty() {
            return Err(format!("{name}: paths is empty"));
        }
        let targets = r.targets.unwrap_or_default().iter().map(|g| glob(g)).collect();
        let globs = r.paths.iter().map(|g| glob(g)).collect();
        paths.push(PathRule { action: r.action, paths: globs, direction, targets, reason: r.reason, name });
    }
    if file.include.iter().any(|p| p == "read-only") {
        paths.push(PathRule {
            action: Action::Deny,
            paths: vec![glob("*")],
            direction: Some("upload"),
            targets: Vec::new(),
            reason: Some("read-only: an upload writes a file".into()),
            name: "preset read-only".into(),
        });
    }
    Ok(Rules {
        default: file.default,
        rules,
        paths,
        approval: file.approval,
        approval_timeout: Duration::from_secs(file.approval_timeout.clamp(1, 3600)),
        remember_approval: Duration::from_secs(file.remember_approval.min(86_400)),
        presets: file.include,
    })
}

/// A shell-style glob (`*`, `?`) as an anchored regex.
fn glob(pattern: &str) -> Regex {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).unwrap_or_else(|_| Regex::new("^$").expect("an empty pattern compiles"))
}

type Preset = &'static [(Action, &'static str, &'static str)];

/// Ask before what cannot be undone. Each pattern sees one command, its program by name.
pub const DESTRUCTIVE: Preset = &[
    (
        Action::Ask,
        r"^rm\s(.*\s)?(-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)(\s.*)?\s(/|/\*|~|~/|~/\*|\$HOME|\$HOME/|\$HOME/\*|/home|/home/\*|/root|/root/\*)(\s|$)",
        "removes / or a home directory recursively",
    ),
    (Action::Ask, r"^mkfs(\.\w+)?(\s|$)", "makes a file system (erases the device)"),
    (Action::Ask, r"^(wipefs|shred|blkdiscard)(\s|$)", "erases a device or file for good"),
    (Action::Ask, r"^dd\s(.*\s)?of=/dev/", "writes over a device"),
    (Action::Ask, r"^(shutdown|reboot|halt|poweroff)(\s|$)", "stops or restarts the machine"),
    (
        Action::Ask,
        r"^systemctl\s(.*\s)?(reboot|poweroff|halt|kexec|emergency|rescue)(\s|$)",
        "stops or restarts the machine",
    ),
    (Action::Ask, r"^(init|telinit)\s+[016sS](\s|$)", "changes the runlevel"),
    (Action::Ask, r"^(iptables|ip6tables)\s(.*\s)?(-F|--flush|-X|--delete-chain)(\s|$)", "flushes the firewall"),
    (Action::Ask, r"^nft\s(.*\s)?flush\s+ruleset", "flushes the firewall"),
    (Action::Ask, r"(?i)\bdrop\s+(database|schema|table)\b", "drops a database or table"),
    (Action::Ask, r"(?i)\btruncate\s+table\b", "empties a table"),
    (
        Action::Ask,
        r"^git\s(.*\s)?push\s(.*\s)?(-f|--force|--force-with-lease|--delete|\+\S+)(\s|$)",
        "rewrites or deletes remote history",
    ),
    (Action::Ask, r"^kubectl\s(.*\s)?delete(\s|$)", "deletes Kubernetes resources"),
    (Action::Ask, r"^helm\s+(uninstall|delete)(\s|$)", "removes a Helm release"),
    (Action::Ask, r"^terraform\s+(destroy|apply\s(.*\s)?-destroy)(\s|$)", "destroys infrastructure"),
    (Action::Ask, r"^(zfs|zpool)\s+destroy(\s|$)", "destroys a ZFS dataset or pool"),
    (Action::Ask, r"^(lvremove|vgremove|pvremove)(\s|$)", "removes LVM volumes"),
    (Action::Ask, r"^crontab\s(.*\s)?-r(\s|$)", "removes the crontab"),
    (Action::Ask, r"^docker\s+(system|volume|image|container)\s+prune(\s|$)", "deletes Docker data"),
    (Action::Ask, r"^chmod\s(.*\s)?-R\s(.*\s)?/(\s|$)", "changes modes under /"),
    (Action::Ask, r"^chown\s(.*\s)?-R\s(.*\s)?/(\s|$)", "changes owners under /"),
];

/// Nothing but commands that look and do not touch. What changes something even within these
/// programs is refused first (`sed -i`, `find -delete`, `ip … set`).
pub const READ_ONLY: Preset = &[
    (Action::Deny, r"^sed\s(.*\s)?(-i|--in-place)", "read-only: sed -i edits files"),
    (
        Action::Deny,
        r"^find\s(.*\s)?-(delete|exec|execdir|ok|okdir|fprint|fprintf|fls)(\s|$)",
        "read-only: find acts on files",
    ),
    (
        Action::Deny,
        r"^(ip|ifconfig)\s(.*\s)?(add|del|delete|set|flush|change|replace|up|down)(\s|$)",
        "read-only: changes the network",
    ),
    (
        Action::Deny,
        r"^(sort|tree|journalctl|dmesg)\s(.*\s)?(-o|--output|-C|--clear|-c|--read-clear|--rotate|--vacuum\S*)(\s|$)",
        "read-only: writes or clears",
    ),
    (Action::Deny, r"^(date|hostname)\s+[^-\s]", "read-only: sets the clock or the host name"),
    (
        Action::Deny,
        r"^(systemctl|service)\s(.*\s)?(start|stop|restart|reload|enable|disable|mask|kill|set-\S+)(\s|$)",
        "read-only: changes services",
    ),
    (
        Action::Allow,
        r"^(ls|cat|head|tail|less|more|grep|egrep|fgrep|zgrep|zcat|find|stat|file|wc|df|du|free|uptime|uname|hostname|whoami|id|groups|date|ps|pgrep|top|htop|w|who|last|lsblk|lsof|lscpu|lsusb|lspci|lsmod|ip|ifconfig|ss|netstat|ping|ping6|traceroute|tracepath|mtr|dig|nslookup|host|journalctl|dmesg|env|printenv|pwd|cd|echo|printf|which|type|true|false|sort|uniq|cut|tr|diff|cmp|md5sum|sha1sum|sha256sum|tree|realpath|readlink|basename|dirname|getent|history|vmstat|iostat|mpstat|sar|nproc|locale|tty|exit|logout|clear)(\s|$)",
        "read-only: looks without touching",
    ),
    (
        Action::Allow,
        r"^(systemctl|service)\s(.*\s)?(status|show|list-units|list-unit-files|is-active|is-enabled|is-failed|cat)(\s|$)",
        "read-only: service status",
    ),
    (
        Action::Allow,
        r"^git\s+(status|log|diff|show|branch|remote|blame|rev-parse|describe)(\s|$)",
        "read-only: repository state",
    ),
    (
        Action::Allow,
        r"^kubectl\s+(get|describe|logs|top|explain|version|api-resources)(\s|$)",
        "read-only: cluster state",
    ),
    (Action::Allow, r"^docker\s+(ps|logs|inspect|images|stats|top|version|info)(\s|$)", "read-only: container state"),
    // Network gear (Cisco, Juniper, Arista, Huawei, MikroTik): the commands that show.
    (
        Action::Allow,
        r"^(show|display|ping|traceroute|terminal\s+length|terminal\s+width|screen-length)(\s|$)",
        "read-only: shows the device's state",
    ),
    (Action::Deny, r".", "read-only: not in the read-only set"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn first(rules: &Rules, command: &str, target: &str) -> Option<(Action, String)> {
        let targets = [target.to_string()];
        rules.rules.iter().find(|r| r.matches(command, &targets, true)).map(|r| (r.action, r.name.clone()))
    }

    #[test]
    fn the_files_rules_come_first_then_presets() {
        let rules = parse(
            r#"
            default = "allow"
            include = ["destructive"]
            [[rule]]
            action = "deny"
            match = 'rm\s+-rf\s+/'
            targets = ["prod*", "local"]
            reason = "never wipe a root"
            [[rule]]
            action = "allow"
            match = '^reboot$'
            targets = ["lab?"]
            "#,
        )
        .unwrap();
        assert_eq!(first(&rules, "rm -rf /", "prod-db1"), Some((Action::Deny, "rule 1".into())));
        assert_eq!(first(&rules, "rm -rf /", "dev1"), Some((Action::Ask, "preset destructive".into())));
        assert_eq!(first(&rules, "reboot", "lab1"), Some((Action::Allow, "rule 2".into())));
        assert_eq!(first(&rules, "reboot", "lab12"), Some((Action::Ask, "preset destructive".into())));
        assert_eq!(first(&rules, "ls -l /", "prod-db1"), None);
        assert_eq!(rules.approval_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_destructive_preset_asks_before_what_cannot_be_undone() {
        let rules = parse(r#"include = ["destructive"]"#).unwrap();
        for command in [
            "rm -rf /",
            "rm -r -f ~",
            "rm --recursive /home/*",
            "mkfs.ext4 /dev/sdb1",
            "dd if=x of=/dev/sda bs=1M",
            "reboot",
            "shutdown -h now",
            "systemctl reboot",
            "iptables -F",
            "psql -c DROP DATABASE prod",
            "git push --force origin main",
            "kubectl -n x delete pod y",
        ] {
            assert_eq!(first(&rules, command, "local").map(|r| r.0), Some(Action::Ask), "{command}");
        }
        for command in ["rm -rf ./build", "rm /tmp/x", "git push origin main", "kubectl get pods", "echo reboot"] {
            assert_eq!(first(&rules, command, "local"), None, "{command}");
        }
    }

    #[test]
    fn the_read_only_preset_allows_looking_only() {
        let rules = parse(r#"include = ["read-only"]"#).unwrap();
        for command in ["ls -l /etc", "cat /etc/hosts", "show running-config", "systemctl status nginx", "ip addr"] {
            assert_eq!(first(&rules, command, "core-sw").map(|r| r.0), Some(Action::Allow), "{command}");
        }
        for command in ["sed -i s/a/b/ f", "find / -delete", "ip link set eth0 down", "touch x", "configure terminal"] {
            assert_eq!(first(&rules, command, "core-sw").map(|r| r.0), Some(Action::Deny), "{command}");
        }
    }

    #[test]
    fn a_shell_only_rule_leaves_other_programs_alone() {
        let rules = parse("[[rule]]\naction = \"deny\"\nmatch = '^exit'\nprograms = [\"shell\"]").unwrap();
        let targets = ["local".to_string()];
        assert!(rules.rules[0].matches("exit", &targets, true));
        assert!(!rules.rules[0].matches("exit", &targets, false));
    }

    #[test]
    fn path_rules_govern_transfers_first_match_else_the_default() {
        let rules = parse(
            r#"
            default = "ask"
            [[path]]
            action = "deny"
            paths = ["/etc/*"]
            direction = "upload"
            targets = ["prod*"]
            reason = "change process"
            [[path]]
            action = "allow"
            paths = ["/etc/*", "/var/log/*"]
            "#,
        )
        .unwrap();
        let check = |target: &str, direction: &str, path: &str| {
            let d = rules.check_path(&[target.to_string()], direction, path);
            (d.action, d.rule)
        };
        assert_eq!(check("prod-web1", "upload", "/etc/nginx/nginx.conf"), (Action::Deny, Some("path 1".into())));
        assert_eq!(check("prod-web1", "download", "/etc/nginx/nginx.conf"), (Action::Allow, Some("path 2".into())));
        assert_eq!(check("dev1", "upload", "/etc/hosts"), (Action::Allow, Some("path 2".into())));
        assert_eq!(check("dev1", "upload", "/home/me/x"), (Action::Ask, None));
        let read_only = parse(r#"include = ["read-only"]"#).unwrap();
        let d = read_only.check_path(&["sw".into()], "upload", "/tmp/x");
        assert_eq!((d.action, d.rule.as_deref()), (Action::Deny, Some("preset read-only")));
        assert!(parse("[[path]]\naction = \"deny\"\npaths = []").unwrap_err().contains("path 1"));
        assert!(parse("[[path]]\naction = \"deny\"\npaths = [\"/x\"]\ndirection = \"up\"").unwrap_err().contains("up"));
    }

    #[test]
    fn bad_files_are_refused_with_what_is_wrong() {
        assert!(parse("default = \"maybe\"").unwrap_err().contains("maybe"));
        assert!(parse("[[rule]]\naction = \"deny\"\nmatch = '('").unwrap_err().contains("rule 1"));
        assert!(parse("include = [\"nope\"]").unwrap_err().contains("nope"));
        assert!(
            parse("[[rule]]\naction = \"deny\"\nmatch = 'x'\nprograms = [\"vim\"]").unwrap_err().contains("programs")
        );
        assert!(parse("defualt = \"deny\"").is_err(), "a misspelt key is an error, not a silent allow");
    }
}
