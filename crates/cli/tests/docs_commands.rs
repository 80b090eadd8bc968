//! Every command line the documentation shows still parses.
//!
//! The README and the pages under `docs/` (and `deploy/`'s guides) show `tradestream …` and
//! `cargo run --release -- …` lines. A renamed subcommand or flag would leave them dead without
//! anyone noticing, so this test finds each one, in fenced shell blocks and in inline code spans,
//! and runs it against the built binary with `--help` appended: clap parses every argument before
//! the help (an unknown flag, a value an enum refuses or a missing subcommand fails) and then
//! prints the help instead of running anything. `cargo bench|test -p P --bench|--test T` lines are
//! checked against the workspace's packages and targets the same way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The documents whose command lines are checked, relative to the repository root.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md")];
    for dir in ["docs", "deploy", "deploy/local", "deploy/k8s"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        found.sort();
        docs.extend(found);
    }
    docs
}

/// One command line found in a document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    /// Document and line, for the failure message.
    place: String,
    /// The words after the program.
    args: Vec<String>,
    /// What invoked it.
    program: Program,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Program {
    /// `tradestream …`, `target/release/tradestream …`, `cargo run [--release] -- …`.
    Tradestream,
    /// `cargo bench …` / `cargo test …`: the package and target must exist.
    Cargo,
}

/// The command lines of one markdown text: lines of fenced blocks (shell or unmarked) with
/// their continuations joined, and inline code spans that are concrete commands (a synopsis
/// with `<placeholders>`, `[options]` or `…` is not a command line).
fn command_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut fence: Option<bool> = None; // Some(is_shell) inside a fenced block
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(matches!(
                    info.trim(),
                    "" | "sh" | "bash" | "shell" | "console" | "text"
                )),
            };
            continue;
        }
        match fence {
            Some(true) => {
                let (start, mut line) = pending.take().unwrap_or((number, String::new()));
                let content = raw.trim();
                if let Some(cont) = content.strip_suffix('\\') {
                    line.push_str(cont.trim_end());
                    line.push(' ');
                    pending = Some((start, line));
                } else {
                    line.push_str(content);
                    lines.push((start, line));
                }
            }
            Some(false) => {}
            None => {
                for span in inline_spans(raw) {
                    let concrete = !span.contains(['<', '[', '|', '…']) && !span.contains("...");
                    if concrete {
                        lines.push((number, span.to_owned()));
                    }
                }
            }
        }
    }
    lines
}

/// The text of each `single-backtick` span of a line.
fn inline_spans(line: &str) -> Vec<&str> {
    let parts: Vec<&str> = line.split('`').collect();
    parts.iter().skip(1).step_by(2).copied().collect()
}

/// Shell words of a line, cut into simple commands at `&&`, `||`, `;`, `|` and at a comment.
/// Quotes are removed as the shell would; `$VAR` and `$(…)` stay as text (their values do not
/// matter to parsing). Redirections and their targets are dropped.
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut skip_next_word = false;
    let finish =
        |word: &mut String, in_word: &mut bool, cmds: &mut Vec<Vec<String>>, skip: &mut bool| {
            if *in_word {
                if *skip {
                    *skip = false;
                } else if let Some(last) = cmds.last_mut() {
                    last.push(std::mem::take(word));
                }
                word.clear();
                *in_word = false;
            }
        };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                // A command substitution: kept as one opaque word.
                in_word = true;
                let mut depth = 0;
                for q in chars.by_ref() {
                    word.push(q);
                    match q {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '#' if !in_word => break,
            ' ' | '\t' => finish(&mut word, &mut in_word, &mut commands, &mut skip_next_word),
            ';' | '|' | '&' => {
                finish(&mut word, &mut in_word, &mut commands, &mut skip_next_word);
                while chars.peek().is_some_and(|n| matches!(n, '|' | '&')) {
                    chars.next();
                }
                commands.push(Vec::new());
            }
            '>' | '<' => {
                // `2>&1`, `> file`, `< file`: drop the operator and its target.
                let fd_only = word.chars().all(|d| d.is_ascii_digit());
                if in_word && fd_only {
                    word.clear();
                    in_word = false;
                } else {
                    finish(&mut word, &mut in_word, &mut commands, &mut skip_next_word);
                }
                while chars.peek().is_some_and(|n| matches!(n, '>' | '<')) {
                    chars.next();
                }
                if chars.peek() == Some(&'&') {
                    chars.next();
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                } else {
                    skip_next_word = true;
                }
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(&mut word, &mut in_word, &mut commands, &mut skip_next_word);
    commands.retain(|c| !c.is_empty());
    commands
}

/// The invocation a simple command makes, if it is one this test checks.
fn invocation(words: &[String]) -> Option<(Program, Vec<String>)> {
    // Leading `VAR=value` assignments and wrappers.
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let assignment = first.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if assignment || matches!(first.as_str(), "env" | "time" | "exec" | "sudo") {
            rest = tail;
        } else {
            break;
        }
    }
    let (program, args) = rest.split_first()?;
    if program == "tradestream" || program.ends_with("/tradestream") {
        return Some((Program::Tradestream, args.to_vec()));
    }
    if program != "cargo" {
        return None;
    }
    match args.first().map(String::as_str) {
        Some("run") => {
            let dashes = args.iter().position(|a| a == "--")?;
            // `cargo run -p other-package` runs something else.
            let other = args[..dashes]
                .windows(2)
                .any(|w| (w[0] == "-p" || w[0] == "--package") && w[1] != "tradestream");
            (!other).then(|| (Program::Tradestream, args[dashes + 1..].to_vec()))
        }
        Some("bench" | "test") => Some((Program::Cargo, args.to_vec())),
        _ => None,
    }
}

fn shown(root: &Path) -> Vec<Shown> {
    let mut all = BTreeSet::new();
    for doc in documents(root) {
        let text = std::fs::read_to_string(&doc).expect("a readable document");
        let name = doc.strip_prefix(root).unwrap_or(&doc).display().to_string();
        for (number, line) in command_lines(&text) {
            for words in simple_commands(&line) {
                if let Some((program, args)) = invocation(&words) {
                    all.insert(Shown {
                        place: format!("{name}:{number}"),
                        args,
                        program,
                    });
                }
            }
        }
    }
    all.into_iter().collect()
}

/// Packages of the workspace and, per package, its bench and test targets.
fn workspace_targets(root: &Path) -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Why a `cargo bench|test` line names something that does not exist, if it does.
fn cargo_line_problem(args: &[String], metadata: &serde_json::Value) -> Option<String> {
    let value_of = |flag: &str| args.windows(2).find(|w| w[0] == flag).map(|w| w[1].clone());
    let package = value_of("-p").or_else(|| value_of("--package"))?;
    let packages = metadata["packages"].as_array()?;
    let Some(found) = packages.iter().find(|p| p["name"] == package.as_str()) else {
        return Some(format!("no package {package} in the workspace"));
    };
    for (flag, kind) in [("--bench", "bench"), ("--test", "test")] {
        let Some(target) = value_of(flag) else {
            continue;
        };
        let exists = found["targets"].as_array().is_some_and(|targets| {
            targets.iter().any(|t| {
                t["name"] == target.as_str()
                    && t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == kind))
            })
        });
        if !exists {
            return Some(format!("package {package} has no {kind} target {target}"));
        }
    }
    None
}

#[test]
fn every_command_line_in_the_docs_parses() {
    let root = tradestream_testkit::repo_root();
    let shown = shown(&root);
    let metadata = workspace_targets(&root);
    let mut failures = Vec::new();
    let mut checked = 0;
    for s in &shown {
        match s.program {
            Program::Tradestream => {
                let out = Command::new(env!("CARGO_BIN_EXE_tradestream"))
                    .args(&s.args)
                    .arg("--help")
                    .current_dir(&root)
                    .output()
                    .expect("the binary runs");
                if !out.status.success() {
                    failures.push(format!(
                        "{}: tradestream {}\n  {}",
                        s.place,
                        s.args.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                            .trim()
                            .replace('\n', "\n  ")
                    ));
                }
            }
            Program::Cargo => {
                if let Some(why) = cargo_line_problem(&s.args, &metadata) {
                    failures.push(format!("{}: cargo {}\n  {why}", s.place, s.args.join(" ")));
                }
            }
        }
        checked += 1;
    }
    println!("checked {checked} command lines of the documentation");
    // The README alone shows more than this: a smaller count means the extraction broke, and
    // the test would pass without checking anything.
    assert!(
        checked >= 40,
        "only {checked} command lines found: the extraction is broken"
    );
    assert!(
        failures.is_empty(),
        "{} command lines of the documentation no longer parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_extraction_reads_shell_as_the_shell_does() {
    let words = simple_commands(
        r#"FOO=1 tradestream run matcher --group "a b" 2>&1 | tee log && cargo run --release -- demo --orders 5 > out # note"#,
    );
    assert_eq!(
        words,
        vec![
            vec!["FOO=1", "tradestream", "run", "matcher", "--group", "a b"],
            vec!["tee", "log"],
            vec!["cargo", "run", "--release", "--", "demo", "--orders", "5"],
        ]
    );
    let (program, args) = invocation(&words[2]).expect("cargo run is an invocation");
    assert_eq!(program, Program::Tradestream);
    assert_eq!(args, ["demo", "--orders", "5"]);
    assert_eq!(
        invocation(&[
            "cargo".into(),
            "run".into(),
            "-p".into(),
            "x".into(),
            "--".into()
        ]),
        None
    );
    let lines = command_lines(
        "text `tradestream topics check` and `tradestream tail <topic>`\n```sh\ntradestream a \\\n  --b c\n```\n```json\ntradestream no\n```\n",
    );
    assert_eq!(
        lines,
        vec![
            (1, "tradestream topics check".to_owned()),
            (3, "tradestream a --b c".to_owned())
        ]
    );
}
