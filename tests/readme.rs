//! README.md's shell blocks, run as written, so the documentation cannot drift from what the commands do.
//!
//! Every fenced block whose info string starts with `sh` is one of:
//! - `sh`: run. All such blocks run in order in one `bash`, in one fresh folder, against a `tlogd` this test
//!   started on `./data` (its address in `TLOG_SERVER`, the CLI's environment default), with the workspace's
//!   binaries first on `PATH`; `http://127.0.0.1:7401` (tlogd's default HTTP address) in a command stands for that
//!   tlogd's HTTP listener. A line `$ CMD` is a command (a trailing `\` continues it); the lines after it, up
//!   to a blank line, a comment or the next command, are its expected standard output, line for line, where `[..]`
//!   matches any text within a line and a line `...` matches any number of lines. A block without `$ ` lines is a
//!   list of commands whose output is not checked. Every command must exit 0.
//! - `sh quick-start` (exactly one block, two commands) and `sh script`: commands that build and run everything
//!   (they would recurse into this test, or build the release profile for 15 minutes); each must name an
//!   executable script of the repository that `bash -n` accepts. CI runs `scripts/test.sh` itself.
//! - `sh bench`: benchmark commands (minutes each); every `--bench NAME` must be a bench target in Cargo.toml and
//!   every script must exist.
//! - `sh grpcurl`: run like `sh` when `grpcurl` is installed (Debian does not package it), else skipped, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use tlog_suite::{Tlogd, bin};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug)]
struct Block {
    kind: String,
    /// 1-based line of the opening fence.
    line: usize,
    body: Vec<String>,
}

fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            match open.take() {
                Some(block) => {
                    if block.kind == "sh" || block.kind.starts_with("sh ") {
                        blocks.push(block);
                    }
                }
                None => {
                    open = Some(Block {
                        kind: info.trim().to_owned(),
                        line: i + 1,
                        body: Vec::new(),
                    })
                }
            }
        } else if let Some(block) = open.as_mut() {
            block.body.push(line.to_owned());
        }
    }
    assert!(open.is_none(), "README.md: an unclosed code fence");
    blocks
}

/// A command and the output it must print.
#[derive(Debug)]
struct Step {
    /// README line of the command.
    line: usize,
    command: String,
    /// `None`: not checked.
    expected: Option<Vec<String>>,
}

fn steps(block: &Block) -> Vec<Step> {
    let prompted = block.body.iter().any(|l| l.starts_with("$ "));
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = block.body.iter().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line_no = block.line + 1 + i;
        let command_text = if prompted {
            match line.strip_prefix("$ ") {
                Some(c) => c,
                None if line.trim().is_empty() || line.starts_with('#') => continue,
                None => panic!(
                    "README.md line {line_no}: output after a blank line or comment belongs to no command"
                ),
            }
        } else if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        } else {
            line.as_str()
        };
        let mut command = command_text.to_owned();
        while command.ends_with('\\') {
            let Some((_, next)) = lines.next() else { break };
            command.push('\n');
            command.push_str(next);
        }
        steps.push(Step {
            line: line_no,
            command,
            expected: prompted.then(Vec::new),
        });
        if prompted {
            // Output runs to a blank line, a comment or the next command.
            while let Some((_, next)) = lines.peek() {
                if next.starts_with("$ ") || next.trim().is_empty() || next.starts_with('#') {
                    break;
                }
                let (_, out) = lines.next().expect("peeked");
                if let Some(expected) = steps.last_mut().and_then(|s| s.expected.as_mut()) {
                    expected.push(out.clone());
                }
            }
        }
    }
    steps
}

/// `[..]` matches any text within the line.
fn line_matches(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split("[..]");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (k, part) in parts.iter().enumerate() {
        if k + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whole output against the expected lines; a `...` line matches any number of lines.
fn output_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && output_matches(rest, more)),
    }
}

/// tlogd's default HTTP address, as the README's commands name it.
const README_HTTP: &str = "http://127.0.0.1:7401";

/// Runs the steps in one bash (so `export` and files carry over), each command's stdout and stderr kept apart;
/// [`README_HTTP`] in a command becomes `http`, the test tlogd's HTTP address.
fn run_steps(steps: &[Step], dir: &Path, server: &str, http: &str) {
    let outs = dir.join(".readme-test");
    std::fs::create_dir_all(&outs).unwrap();
    let mut script = String::from("set -u\n");
    for (i, step) in steps.iter().enumerate() {
        script.push_str(&format!(
            "{{\n{}\n}} >{out}/{i}.out 2>{out}/{i}.err </dev/null\necho $? >{out}/{i}.rc\n\
             [ \"$(cat {out}/{i}.rc)\" = 0 ] || exit 0\n",
            step.command.replace(README_HTTP, http),
            out = outs.display()
        ));
    }
    let bin_dir = bin("tlog").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env("TLOG_SERVER", server)
        .env_remove("TLOG_VERIFIER_KEY")
        .env_remove("TLOG_TOKEN")
        .env("NO_COLOR", "1")
        .status()
        .expect("running bash");
    assert!(status.success(), "bash failed to run the README's commands");
    for (i, step) in steps.iter().enumerate() {
        let read = |ext: &str| std::fs::read_to_string(outs.join(format!("{i}.{ext}")));
        let rc = read("rc").unwrap_or_else(|_| {
            panic!(
                "README.md line {}: never ran (an earlier command failed)",
                step.line
            )
        });
        let (stdout, stderr) = (read("out").unwrap(), read("err").unwrap());
        assert_eq!(
            rc.trim(),
            "0",
            "README.md line {}: `{}` exited {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            step.line,
            step.command,
            rc.trim()
        );
        if let Some(expected) = &step.expected {
            let actual: Vec<&str> = stdout.lines().collect();
            assert!(
                output_matches(expected, &actual),
                "README.md line {}: `{}` printed\n{stdout}\nwhich does not match the README's\n{}\n(stderr:\n{stderr})",
                step.line,
                step.command,
                expected.join("\n")
            );
        }
    }
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).expect("README.md")
}

#[test]
fn the_readme_walk_through_runs_as_written() {
    let blocks = sh_blocks(&readme());
    let have_grpcurl = Command::new("grpcurl").arg("-version").output().is_ok();
    let mut run = Vec::new();
    for block in &blocks {
        match block.kind.as_str() {
            "sh" => run.extend(steps(block)),
            "sh grpcurl" if have_grpcurl => run.extend(steps(block)),
            "sh grpcurl" => eprintln!(
                "README.md line {}: grpcurl is not installed; its block is not run",
                block.line
            ),
            _ => {}
        }
    }
    assert!(
        run.len() >= 5,
        "expected the walk-through's commands, found {run:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let tlogd = Tlogd::start(&dir.path().join("data"), &[]);
    let http = tlogd.http.clone().expect("tlogd serves HTTP");
    run_steps(&run, dir.path(), &tlogd.addr, &http);
    tlogd.stop();
}

#[test]
fn the_quick_start_names_runnable_scripts() {
    let blocks = sh_blocks(&readme());
    let quick: Vec<&Block> = blocks
        .iter()
        .filter(|b| b.kind == "sh quick-start")
        .collect();
    assert_eq!(quick.len(), 1, "README.md has one quick-start block");
    let commands = steps(quick[0]);
    assert_eq!(commands.len(), 2, "the quick start is two commands");
    let scripts = blocks.iter().filter(|b| b.kind == "sh script");
    for step in commands
        .iter()
        .chain(scripts.flat_map(steps).collect::<Vec<_>>().iter())
    {
        let script = step.command.split_whitespace().next().unwrap();
        check_script(script, step.line);
    }
}

#[test]
fn the_benchmark_commands_name_real_targets() {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let blocks = sh_blocks(&readme());
    let bench: Vec<&Block> = blocks.iter().filter(|b| b.kind == "sh bench").collect();
    assert!(!bench.is_empty(), "README.md has a benchmark block");
    for step in bench.iter().flat_map(|b| steps(b)) {
        let words: Vec<&str> = step.command.split_whitespace().collect();
        if words[0] == "cargo" {
            let name = words
                .windows(2)
                .find(|w| w[0] == "--bench")
                .map(|w| w[1])
                .unwrap_or_else(|| panic!("README.md line {}: no --bench NAME", step.line));
            assert!(
                manifest.contains(&format!("[[bench]]\nname = \"{name}\""))
                    || manifest.contains(&format!("name = \"{name}\"")),
                "README.md line {}: no bench target {name} in Cargo.toml",
                step.line
            );
        } else {
            check_script(words[0], step.line);
        }
    }
}

fn check_script(script: &str, line: usize) {
    use std::os::unix::fs::PermissionsExt;
    let path = repo().join(script);
    let meta =
        std::fs::metadata(&path).unwrap_or_else(|e| panic!("README.md line {line}: {script}: {e}"));
    assert!(
        meta.permissions().mode() & 0o111 != 0,
        "README.md line {line}: {script} is not executable"
    );
    let syntax = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(
        syntax.success(),
        "README.md line {line}: {script} has a syntax error"
    );
}

#[test]
fn patterns_match_what_they_should() {
    assert!(line_matches("leaf hash [..]", "leaf hash c0de"));
    assert!(line_matches("a [..] b [..] c", "a 1 b 2 c"));
    assert!(!line_matches("a [..] c", "a 1 b"));
    assert!(!line_matches("exact", "exact!"));
    let lines = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(output_matches(
        &lines(&["x", "...", "z"]),
        &["x", "y", "y", "z"]
    ));
    assert!(!output_matches(&lines(&["x", "z"]), &["x", "y", "z"]));
}
