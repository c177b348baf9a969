//! Every `§` reference in the repository names a section that exists in the repository, and no
//! file points outside the repository.
//!
//! The walk starts at the workspace root and reads `.rs`, `.md`, `.py`, `.sh` and `.toml` files,
//! and the extensionless files under `scripts/` and `.ci/` (skipping `target`, `.git`,
//! `fuzz/corpus`, `fuzz/artifacts`, `fuzz/target`, `.venv*` and `node_modules`). A reference is
//! `§` (or `§§`) followed by a section number: `§4`, `§4.14`, a range with an en dash or a hyphen
//! (`§1.1–1.2`, `§2.1–§2.5`, `§§4.20-4.22`; both ends are checked, and the end must not come
//! before the start), or a list (`§4.1, §4.2`; after `§§` also `§§4.1, 4.2`). A trailing `.` ends
//! the sentence, not the number. The `§` character itself in backticks is not a reference.
//!
//! Where the same line names a markdown document right before the `§` (only spaces, backticks,
//! `*` and quotes in between: "`docs/checkpoint-format.md` §1.6", "docs/wal-format.md §2",
//! "checkpoint-format.md §1.5"), the section must be a numbered heading of that document
//! (`## 1. Checkpoints`, `### 1.6 Crash points`); the following items of a list
//! ("`docs/wal-format.md` §2, §5") refer to the same document. Every other reference must be a
//! numbered heading of `docs/protocol.md`. A document name is looked up from the repository
//! root, then next to the file that names it, then in `docs/`.
//!
//! Mentions of the shared directory outside the repository, the shared spec or the shared design
//! file (the strings in `OUTSIDE`) are failures too. This file itself is not scanned: its test
//! cases contain broken references on purpose.
//!
//! On failure every problem is listed as `path:line: …`, so that all of them can be fixed at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The default document of an unqualified `§` reference.
const PROTOCOL: &str = "docs/protocol.md";

/// Strings that point outside the repository.
const OUTSIDE: [&str; 4] = ["../shared/", "shared/spec", "rcp-v1.md", "DESIGN.md"];

/// Directory names skipped wherever they occur.
const SKIP_NAMES: [&str; 3] = ["target", ".git", "node_modules"];

/// Directories (relative to the root) skipped.
const SKIP_PATHS: [&str; 3] = ["fuzz/corpus", "fuzz/artifacts", "fuzz/target"];

const EXTENSIONS: [&str; 5] = ["rs", "md", "py", "sh", "toml"];

/// Directories whose extensionless files are scripts to scan.
const SCRIPT_DIRS: [&str; 2] = ["scripts/", ".ci/"];

/// One `§` reference as written on a line.
#[derive(Debug, PartialEq)]
struct Reference {
    /// The markdown document named right before it (or inherited within a list), as written.
    doc: Option<String>,
    /// The reference as written, e.g. `§4.20–4.22`.
    text: String,
    /// The section numbers to check: one, or both ends of a range (and every list item after
    /// `§§`).
    sections: Vec<String>,
}

/// The `§` references of one line, in order; `Err` for one that cannot be read.
fn parse_line(line: &str) -> Vec<Result<Reference, String>> {
    let mut out = Vec::new();
    // End of the previous reference and its document, for lists ("`x.md` §2, §5").
    let mut previous: Option<(usize, Option<String>)> = None;
    let mut i = 0;
    while let Some(found) = line[i..].find('§') {
        let start = i + found;
        let mut j = start;
        while line[j..].starts_with('§') {
            j += '§'.len_utf8();
        }
        let plural = j - start > '§'.len_utf8();
        if line[..start].ends_with('`') && line[j..].starts_with('`') {
            // The character itself, quoted: "a `§` reference".
            i = j;
            continue;
        }
        let Some((first, mut k)) = number(line, j) else {
            let shown: String = line[start..].chars().take(12).collect();
            out.push(Err(format!("`§` without a section number: \"{shown}\"")));
            i = j;
            previous = None;
            continue;
        };
        let mut sections = vec![first];
        let mut problem = None;
        if let Some((end, after)) = range_end(line, k) {
            problem = backwards(&sections[0], &end);
            sections.push(end);
            k = after;
        }
        if plural {
            // "§§4.1, 4.2" and "§§4.1 and 4.3–4.5".
            loop {
                let rest = &line[k..];
                let sep = [", ", " and ", ", and "]
                    .into_iter()
                    .find(|sep| rest.starts_with(sep) && number(rest, sep.len()).is_some());
                let Some(sep) = sep else { break };
                let (item, mut after) = number(line, k + sep.len()).expect("checked above");
                let item_start = item.clone();
                sections.push(item);
                if let Some((end, after_end)) = range_end(line, after) {
                    problem = problem.or_else(|| backwards(&item_start, &end));
                    sections.push(end);
                    after = after_end;
                }
                k = after;
            }
        }
        let text = line[start..k].to_string();
        if let Some(problem) = problem {
            out.push(Err(format!("{text}: {problem}")));
            previous = None;
            i = k;
            continue;
        }
        let doc = match &previous {
            Some((end, doc)) if is_list_separator(&line[*end..start]) => doc.clone(),
            _ => doc_before(&line[..start]),
        };
        out.push(Ok(Reference {
            doc: doc.clone(),
            text,
            sections,
        }));
        previous = Some((k, doc));
        i = k;
    }
    out
}

/// A section number at byte `at`: digits, then any number of `.digits`. Returns it and the byte
/// after it. A `.` not followed by a digit is not part of it.
fn number(line: &str, at: usize) -> Option<(String, usize)> {
    let bytes = line.as_bytes();
    let digits = |from: usize| {
        let mut end = from;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        end
    };
    let mut end = digits(at);
    if end == at {
        return None;
    }
    while end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
        end = digits(end + 1);
    }
    Some((line[at..end].to_string(), end))
}

/// The end of a range starting at byte `at` (`–4.22`, `-4.22`, `–§4.22`).
fn range_end(line: &str, at: usize) -> Option<(String, usize)> {
    let rest = &line[at..];
    let dash = ['–', '-']
        .into_iter()
        .find(|dash| rest.starts_with(*dash))?;
    let mut k = at + dash.len_utf8();
    while line[k..].starts_with('§') {
        k += '§'.len_utf8();
    }
    number(line, k)
}

/// Why the range `start`–`end` is wrong, if it is: its end comes before its start.
fn backwards(start: &str, end: &str) -> Option<String> {
    let parts = |s: &str| {
        s.split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    (parts(end) < parts(start))
        .then(|| format!("the range ends ({end}) before it starts ({start})"))
}

/// Whether the text between two references joins them into one list.
fn is_list_separator(between: &str) -> bool {
    matches!(between.trim(), "," | "and" | ", and" | "or" | ", or" | "to")
}

/// The markdown document named right before a reference: only spaces, backticks, `*` and quotes
/// may stand between its name and the `§`.
fn doc_before(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_end_matches(|c: char| c.is_whitespace() || "`*\"'".contains(c));
    if !trimmed.ends_with(".md") {
        return None;
    }
    let start = trimmed
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || "/._-".contains(*c))
        .last()
        .map_or(trimmed.len(), |(index, _)| index);
    let name = &trimmed[start..];
    (name.len() > ".md".len()).then(|| name.to_string())
}

/// The numbered headings of a markdown document (`## 1. Checkpoints` gives `1`, `### 1.6 Crash
/// points` gives `1.6`), outside fenced code blocks.
fn headings(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fence: Option<&str> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            match fence {
                None => fence = Some(marker),
                Some(open) if open == marker => fence = None,
                Some(_) => {}
            }
            continue;
        }
        if fence.is_some() {
            continue;
        }
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let title = line[hashes..].trim_start();
        let Some((section, after)) = number(title, 0) else {
            continue;
        };
        let rest = title[after..].strip_prefix('.').unwrap_or(&title[after..]);
        if rest.is_empty() || rest.starts_with(char::is_whitespace) {
            out.insert(section);
        }
    }
    out
}

/// The documents references point into, by repository-relative path; loaded on first use.
struct Docs {
    /// The repository root, or `None` for documents given in memory (the unit tests).
    root: Option<PathBuf>,
    sections: BTreeMap<String, Option<BTreeSet<String>>>,
}

impl Docs {
    fn on_disk(root: &Path) -> Self {
        Self {
            root: Some(root.to_path_buf()),
            sections: BTreeMap::new(),
        }
    }

    fn in_memory(docs: &[(&str, &str)]) -> Self {
        let sections = docs
            .iter()
            .map(|(path, text)| (path.to_string(), Some(headings(text))))
            .collect();
        Self {
            root: None,
            sections,
        }
    }

    fn exists(&self, rel: &str) -> bool {
        match &self.root {
            Some(root) => root.join(rel).is_file(),
            None => self.sections.contains_key(rel),
        }
    }

    /// The repository-relative path of the document `name`, named in the file `from`.
    fn resolve(&self, from: &str, name: &str) -> Option<String> {
        let dir = from.rsplit_once('/').map_or("", |(dir, _)| dir);
        let base = name.rsplit('/').next().unwrap_or(name);
        [
            normalise("", name),
            normalise(dir, name),
            normalise("docs", base),
        ]
        .into_iter()
        .flatten()
        .find(|candidate| self.exists(candidate))
    }

    /// The numbered headings of the document at `rel`, `None` if it cannot be read.
    fn sections(&mut self, rel: &str) -> Option<&BTreeSet<String>> {
        let root = self.root.clone();
        self.sections
            .entry(rel.to_string())
            .or_insert_with(|| {
                let text = fs::read_to_string(root?.join(rel)).ok()?;
                Some(headings(&text))
            })
            .as_ref()
    }
}

/// `dir/name` as a repository-relative path with `.` and `..` resolved; `None` above the root.
fn normalise(dir: &str, name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(name.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[derive(Debug, Default)]
struct Report {
    files: usize,
    references: usize,
    problems: Vec<String>,
}

/// Checks one file's text; `path` is repository-relative and only used in messages and to find
/// documents named next to the file.
fn check_text(path: &str, text: &str, docs: &mut Docs, report: &mut Report) {
    report.files += 1;
    for (index, line) in text.lines().enumerate() {
        let at = format!("{path}:{}", index + 1);
        for outside in OUTSIDE.iter().filter(|outside| line.contains(*outside)) {
            report.problems.push(format!(
                "{at}: \"{outside}\" points outside the repository (use docs/protocol.md or docs/architecture.md)"
            ));
        }
        for parsed in parse_line(line) {
            let reference = match parsed {
                Ok(reference) => reference,
                Err(problem) => {
                    report.problems.push(format!("{at}: {problem}"));
                    continue;
                }
            };
            report.references += 1;
            let doc = match &reference.doc {
                None => PROTOCOL.to_string(),
                Some(name) => match docs.resolve(path, name) {
                    Some(doc) => doc,
                    None => {
                        report.problems.push(format!(
                            "{at}: {}: document {name} not found in the repository",
                            reference.text
                        ));
                        continue;
                    }
                },
            };
            let Some(sections) = docs.sections(&doc) else {
                report
                    .problems
                    .push(format!("{at}: {}: cannot read {doc}", reference.text));
                continue;
            };
            for section in &reference.sections {
                if !sections.contains(section) {
                    let shown = if reference.sections.len() > 1 {
                        format!(" (in \"{}\")", reference.text)
                    } else {
                        String::new()
                    };
                    report
                        .problems
                        .push(format!("{at}: §{section} not found in {doc}{shown}"));
                }
            }
        }
    }
}

/// Whether a file at `rel` is one of the text files to scan.
fn is_scanned(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => EXTENSIONS.contains(&ext),
        _ => SCRIPT_DIRS.iter().any(|dir| rel.starts_with(dir)),
    }
}

fn walk(root: &Path, dir: &Path, skip_file: Option<&Path>, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(root)
            .expect("inside the root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let skipped = SKIP_NAMES.contains(&name.as_str())
                || name.starts_with(".venv")
                || SKIP_PATHS.contains(&rel.as_str());
            if !skipped {
                walk(root, &path, skip_file, out);
            }
        } else if meta.is_file() && is_scanned(&rel) && Some(path.as_path()) != skip_file {
            out.push((rel, path));
        }
    }
}

#[test]
fn every_section_reference_resolves_inside_the_repository() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .join("..")
        .canonicalize()
        .expect("the workspace root");
    // This file: `file!()` is relative to the workspace root (or to the package).
    let own = [root.join(file!()), manifest.join(file!())]
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok());
    assert!(
        own.is_some(),
        "cannot find this test's own source ({})",
        file!()
    );

    let mut files = Vec::new();
    walk(&root, &root, own.as_deref(), &mut files);

    let mut docs = Docs::on_disk(&root);
    let mut report = Report::default();
    for (rel, path) in &files {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
        check_text(
            rel,
            &String::from_utf8_lossy(&bytes),
            &mut docs,
            &mut report,
        );
    }

    println!(
        "checked {} § references in {} files; {} problems",
        report.references,
        report.files,
        report.problems.len()
    );
    // A walk that finds nothing would pass vacuously.
    assert!(
        report.files >= 50,
        "only {} files found under {}",
        report.files,
        root.display()
    );
    assert!(
        report.references >= 100,
        "only {} § references found",
        report.references
    );
    assert!(
        report.problems.is_empty(),
        "{} broken references or mentions outside the repository:\n{}",
        report.problems.len(),
        report.problems.join("\n")
    );
}

#[cfg(test)]
mod parser {
    use super::*;

    /// Each reference of `line` as "DOC SECTION SECTION…" (DOC left out for the protocol).
    fn refs(line: &str) -> Vec<String> {
        parse_line(line)
            .into_iter()
            .map(|r| {
                let r = r.unwrap_or_else(|e| panic!("{line:?}: {e}"));
                let doc = r.doc.map(|d| format!("{d} ")).unwrap_or_default();
                format!("{doc}{}", r.sections.join(" "))
            })
            .collect()
    }

    #[test]
    fn single_references_and_sentence_ends() {
        assert_eq!(refs("see §4 and §4.14."), ["4", "4.14"]);
        assert_eq!(refs("(spec §6.10): offsets"), ["6.10"]);
        assert!(refs("no reference here").is_empty());
    }

    #[test]
    fn ranges_check_both_ends() {
        assert_eq!(refs("§1.1–1.2"), ["1.1 1.2"]);
        assert_eq!(refs("(spec §2.1–§2.5)"), ["2.1 2.5"]);
        assert_eq!(refs("§§4.20-4.22"), ["4.20 4.22"]);
        // A hyphen followed by a word is not a range.
        assert_eq!(refs("a §4.6-style result"), ["4.6"]);
        // 4.9 comes before 4.10: numbers compare as numbers, not as text.
        assert_eq!(refs("§4.9–4.10"), ["4.9 4.10"]);
        let backwards = parse_line("§4.22–4.20");
        assert!(
            matches!(&backwards[..], [Err(e)] if e.contains("before it starts")),
            "{backwards:?}"
        );
    }

    #[test]
    fn lists() {
        assert_eq!(refs("(§4.1, §4.2)"), ["4.1", "4.2"]);
        assert_eq!(refs("§§4.1, 4.2 and 4.5–4.7"), ["4.1 4.2 4.5 4.7"]);
    }

    #[test]
    fn document_qualified_references() {
        assert_eq!(
            refs("header (`docs/checkpoint-format.md` §1.2): x"),
            ["docs/checkpoint-format.md 1.2"]
        );
        assert_eq!(
            refs("See checkpoint-format.md §1.5."),
            ["checkpoint-format.md 1.5"]
        );
        assert_eq!(refs("(docs/wal-format.md §2)"), ["docs/wal-format.md 2"]);
        // The list after a document stays in it ...
        assert_eq!(
            refs("`docs/wal-format.md` §2, §5"),
            ["docs/wal-format.md 2", "docs/wal-format.md 5"]
        );
        // ... but a document qualifies only what follows it.
        assert_eq!(
            refs("(spec §6.1, docs/wal-format.md §5)"),
            ["6.1", "docs/wal-format.md 5"]
        );
        // Words in between: the protocol.
        assert_eq!(refs("(docs/architecture.md invariant, §6.10)"), ["6.10"]);
    }

    #[test]
    fn malformed_references_and_the_quoted_character() {
        assert!(matches!(&parse_line("see § 4.1")[..], [Err(_)]));
        assert!(matches!(&parse_line("§x")[..], [Err(_)]));
        assert!(refs("a `§` citation").is_empty());
    }

    #[test]
    fn numbered_headings_outside_code_blocks() {
        let md = "# Title\n## 1. Checkpoints\n### 1.6 Crash points\n## Pieces\n\
                  ```\n# 9. not a heading\n```\n#### 12.3 Cluster ops (extension)\n##2. no space\n";
        let found: Vec<_> = headings(md).into_iter().collect();
        assert_eq!(found, ["1", "1.6", "12.3"]);
    }

    #[test]
    fn documents_resolve_from_the_root_next_to_the_file_and_in_docs() {
        let docs = Docs::in_memory(&[("docs/checkpoint-format.md", ""), ("rstmdb/NOTES.md", "")]);
        let from = "rstmdb/src/checkpoint/store.rs";
        assert_eq!(
            docs.resolve(from, "docs/checkpoint-format.md").as_deref(),
            Some("docs/checkpoint-format.md")
        );
        assert_eq!(
            docs.resolve(from, "checkpoint-format.md").as_deref(),
            Some("docs/checkpoint-format.md")
        );
        assert_eq!(
            docs.resolve(from, "../../NOTES.md").as_deref(),
            Some("rstmdb/NOTES.md")
        );
        assert_eq!(docs.resolve(from, "missing.md"), None);
    }

    #[test]
    fn the_checker_reports_every_problem_with_its_place() {
        let mut docs = Docs::in_memory(&[
            (
                PROTOCOL,
                "## 4. Operations\n### 4.14 APPLY_EVENT\n### 4.15 BATCH\n## 6. Semantics\n",
            ),
            (
                "docs/wal-format.md",
                "## 2. Record layout\n## 5. Commit protocol\n",
            ),
        ]);
        let mut report = Report::default();
        let text = "// fine: §4.14, §4.14–4.15, docs/wal-format.md §5\n\
                    // missing: §4.99 and §6.1\n\
                    // wrong document: `docs/wal-format.md` §4.14\n\
                    // range end missing: §4.14–4.16\n\
                    // unknown document: nowhere.md §1\n\
                    // outside: see ../shared/spec/rcp-v1.md\n";
        check_text("rstmdb/src/x.rs", text, &mut docs, &mut report);
        assert_eq!(
            report.problems,
            [
                "rstmdb/src/x.rs:2: §4.99 not found in docs/protocol.md",
                "rstmdb/src/x.rs:2: §6.1 not found in docs/protocol.md",
                "rstmdb/src/x.rs:3: §4.14 not found in docs/wal-format.md",
                "rstmdb/src/x.rs:4: §4.16 not found in docs/protocol.md (in \"§4.14–4.16\")",
                "rstmdb/src/x.rs:5: §1: document nowhere.md not found in the repository",
                "rstmdb/src/x.rs:6: \"../shared/\" points outside the repository (use docs/protocol.md or docs/architecture.md)",
                "rstmdb/src/x.rs:6: \"shared/spec\" points outside the repository (use docs/protocol.md or docs/architecture.md)",
                "rstmdb/src/x.rs:6: \"rcp-v1.md\" points outside the repository (use docs/protocol.md or docs/architecture.md)",
            ]
        );
        assert_eq!(report.references, 8);
    }

    #[test]
    fn scanned_files() {
        assert!(is_scanned("rstmdb/src/lib.rs"));
        assert!(is_scanned("docs/protocol.md"));
        assert!(is_scanned("tests/interop/scenario.py"));
        assert!(is_scanned("scripts/test"));
        assert!(is_scanned(".ci/run"));
        assert!(!is_scanned("Cargo.lock"));
        assert!(!is_scanned("examples/order.json"));
        assert!(!is_scanned("rstmdb/README"));
    }
}
