//! Every deterministic figure in README.md and docs/ (virtual time, event counts, scenario
//! outcomes) is still what its command prints.
//!
//! A figure is marked in the Markdown source as
//! `<!--fig ARGS #PATH-->VALUE<!--/fig-->`: `consensus-lab ARGS` prints JSON, `PATH` picks a value
//! from it (`.`-separated keys and array indexes), and `VALUE` is that value as the page shows it
//! (its decimals and thousands separators decide the format). GitHub renders only `VALUE`.
//! A marker right after a backtick is quoted in inline code and not a figure.
//! An `ARGS` that starts with `@` names a computation of this file instead of a command (the
//! figures a criterion bench prints, which no command does).
//! `<!--figcmd NAME: ARGS-->` names a command once per file, so that its figures can say
//! `<!--fig NAME #PATH-->`.
//! `UPDATE_DOCS=1 cargo test -p harness --test doc_figures` rewrites the stale values
//! (`docs/measure.sh` does that and regenerates the SVG figures).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const OPEN: &str = "<!--fig ";
const CLOSE: &str = "<!--/fig-->";
const NAME: &str = "<!--figcmd ";

/// One marked figure: where it is, its command and path, and the value the page shows.
struct Figure {
    file: PathBuf,
    line: usize,
    args: String,
    path: String,
    /// Byte range of the shown value in the file.
    value: std::ops::Range<usize>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// The commands a file names with `<!--figcmd NAME: ARGS-->`.
fn named_commands(file: &Path, text: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for piece in text.split(NAME).skip(1) {
        let head = &piece[..piece.find("-->").expect("an unclosed <!--figcmd")];
        let (name, args) = head
            .split_once(':')
            .unwrap_or_else(|| panic!("{}: `{head}` is not NAME: ARGS", file.display()));
        names.insert(name.trim().to_string(), args.trim().to_string());
    }
    names
}

fn figures_in(file: &Path, text: &str) -> Vec<Figure> {
    let names = named_commands(file, text);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find(OPEN) {
        let start = at + i;
        if text[..start].ends_with('`') {
            // Quoted in inline code: the syntax explained, not a figure.
            at = start + OPEN.len();
            continue;
        }
        let head_end = start + text[start..].find("-->").expect("an unclosed <!--fig");
        let head = &text[start + OPEN.len()..head_end];
        let (args, path) = head
            .rsplit_once(" #")
            .unwrap_or_else(|| panic!("{}: `{head}` has no #PATH", file.display()));
        let value_start = head_end + 3;
        let value_end = value_start
            + text[value_start..]
                .find(CLOSE)
                .unwrap_or_else(|| panic!("{}: `{head}` has no {CLOSE}", file.display()));
        out.push(Figure {
            file: file.to_path_buf(),
            line: text[..start].matches('\n').count() + 1,
            args: names
                .get(args.trim())
                .cloned()
                .unwrap_or_else(|| args.trim().to_string()),
            path: path.trim().to_string(),
            value: value_start..value_end,
        });
        at = value_end + CLOSE.len();
    }
    out
}

/// `@election-after-crash`: what `cargo bench -p benches -- election` prints: virtual ms from
/// the leader's crash to a new leader, 5 nodes, default settings, mean and max over seeds 1-20.
fn election_after_crash() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for p in harness::protocol::builtin() {
        // As the bench computes them: a Duration mean (whole nanoseconds), then ms.
        let times: Vec<std::time::Duration> = (1..=20)
            .map(|seed| {
                harness::figure16::election_after_crash(p, &Default::default(), seed)
                    .expect("a new leader")
            })
            .collect();
        let mean = (times.iter().sum::<std::time::Duration>() / 20).as_secs_f64() * 1e3;
        let max = times.iter().max().expect("20 trials").as_secs_f64() * 1e3;
        out.insert(
            p.name().to_string(),
            serde_json::json!({ "mean_ms": mean, "max_ms": max }),
        );
    }
    serde_json::Value::Object(out)
}

fn run(args: &str) -> serde_json::Value {
    if args == "@election-after-crash" {
        return election_after_crash();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_consensus-lab"))
        .args(args.split_whitespace())
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "consensus-lab {args} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("consensus-lab {args} did not print JSON: {e}"))
}

fn pick<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) if v.is_array() => v.get(i),
            _ => v.get(key),
        })
}

/// `value` formatted as `shown` is: the same decimals, thousands separators if it has them.
fn format_like(value: &serde_json::Value, shown: &str) -> String {
    match value {
        serde_json::Value::Bool(b) if shown == "yes" || shown == "no" => {
            if *b { "yes" } else { "no" }.to_string()
        }
        serde_json::Value::Number(n) => {
            let x = n.as_f64().unwrap();
            let decimals = shown.split_once('.').map_or(0, |(_, d)| d.len());
            let text = format!("{x:.decimals$}");
            if !shown.contains(',') {
                return text;
            }
            let (int, frac) = text
                .split_once('.')
                .map_or((&text[..], ""), |(i, f)| (i, f));
            let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            let frac = if frac.is_empty() {
                String::new()
            } else {
                format!(".{frac}")
            };
            format!("{sign}{grouped}{frac}")
        }
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[test]
fn format_follows_the_page() {
    let v = serde_json::json!(2504428);
    assert_eq!(format_like(&v, "2,504,385"), "2,504,428");
    assert_eq!(format_like(&v, "2504385"), "2504428");
    assert_eq!(format_like(&serde_json::json!(4.193), "4.2"), "4.2");
    assert_eq!(format_like(&serde_json::json!(186.0), "186"), "186");
    assert_eq!(format_like(&serde_json::json!(2861.4), "2,861"), "2,861");
    assert_eq!(format_like(&serde_json::json!(true), "yes"), "yes");
}

#[test]
fn deterministic_figures_in_the_docs_match_their_commands() {
    let mut texts: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut figures = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        figures.extend(figures_in(&file, &text));
        texts.insert(file, text);
    }
    // The docs carry dozens of marked figures; far fewer means the markers stopped being found.
    assert!(figures.len() >= 50, "only {} marked figures", figures.len());

    // Each distinct command once, two at a time (the machine has two cores).
    let mut commands: Vec<String> = figures.iter().map(|f| f.args.clone()).collect();
    commands.sort();
    commands.dedup();
    for c in &commands {
        assert!(
            c.starts_with('@') || c.contains("--json"),
            "`{c}` must print JSON (--json)"
        );
    }
    let outputs: BTreeMap<String, serde_json::Value> = std::thread::scope(|s| {
        let half = commands.len().div_ceil(2);
        let handles: Vec<_> = commands
            .chunks(half.max(1))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| (c.clone(), run(c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    let mut edits: BTreeMap<PathBuf, Vec<(std::ops::Range<usize>, String)>> = BTreeMap::new();
    for f in &figures {
        let text = &texts[&f.file];
        let shown = &text[f.value.clone()];
        let value = pick(&outputs[&f.args], &f.path).unwrap_or_else(|| {
            panic!(
                "{}:{}: `{}` has nothing at #{}",
                f.file.display(),
                f.line,
                f.args,
                f.path
            )
        });
        let want = format_like(value, shown);
        if want != shown {
            stale.push(format!(
                "{}:{}: `consensus-lab {} #{}` is {want}, the page says {shown}",
                f.file.strip_prefix(root()).unwrap_or(&f.file).display(),
                f.line,
                f.args,
                f.path
            ));
            edits
                .entry(f.file.clone())
                .or_default()
                .push((f.value.clone(), want));
        }
    }
    if update {
        for (file, mut changes) in edits {
            let mut text = texts[&file].clone();
            changes.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
            for (range, value) in changes {
                text.replace_range(range, &value);
            }
            std::fs::write(&file, text).unwrap();
        }
        for line in &stale {
            eprintln!("updated {line}");
        }
        return;
    }
    assert!(
        stale.is_empty(),
        "stale figures in the docs (UPDATE_DOCS=1 cargo test -p harness --test doc_figures \
         rewrites them):\n{}",
        stale.join("\n")
    );
}
