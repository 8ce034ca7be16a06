//! The book: every include, anchor and link resolves, the chapter list matches the
//! chapters that exist, and mdBook builds it.
//!
//! mdBook itself only logs a warning for a missing include and carries on, so the
//! checks here are what make a stale page fail.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

fn book_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("book")
}

fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(book_dir().join("src"))
        .expect("read book/src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// One `{{#include path:spec}}` in a page.
struct Include {
    page: PathBuf,
    path: PathBuf,
    spec: Option<String>,
}

fn includes() -> Vec<Include> {
    let pattern =
        Regex::new(r"\{\{#(?:include|rustdoc_include)\s+([^}\s:]+)(?::([^}\s]*))?\s*\}\}")
            .expect("regex");
    let mut found = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).expect("read page");
        for cap in pattern.captures_iter(&text) {
            found.push(Include {
                page: page.clone(),
                path: page.parent().expect("page dir").join(&cap[1]),
                spec: cap.get(2).map(|m| m.as_str().to_string()),
            });
        }
    }
    found
}

#[test]
fn every_included_file_exists() {
    let missing: Vec<String> = includes()
        .iter()
        .filter(|inc| !inc.path.is_file())
        .map(|inc| format!("{} includes {}", inc.page.display(), inc.path.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing includes:\n{}",
        missing.join("\n")
    );
}

/// The text of a comment line, in Rust (`//`) or in a shell script (`#`).
fn comment_text(line: &str) -> &str {
    let line = line.trim_start();
    line.strip_prefix("//")
        .or_else(|| line.strip_prefix('#'))
        .unwrap_or(line)
        .trim()
}

#[test]
fn every_included_anchor_exists() {
    let mut missing = Vec::new();
    for inc in includes() {
        let Some(anchor) = inc
            .spec
            .as_deref()
            .filter(|s| !s.is_empty() && !s.chars().next().is_some_and(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(source) = fs::read_to_string(&inc.path) else {
            continue;
        };
        let opens = source
            .lines()
            .any(|l| comment_text(l) == format!("ANCHOR: {anchor}"));
        let closes = source
            .lines()
            .any(|l| comment_text(l) == format!("ANCHOR_END: {anchor}"));
        if !(opens && closes) {
            missing.push(format!(
                "{} includes anchor `{anchor}` of {}",
                inc.page.display(),
                inc.path.display()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "missing anchors:\n{}",
        missing.join("\n")
    );
}

/// A snapshot included into the book must start right after insta's header, so the reader
/// sees exactly the output the test checked and none of the metadata.
#[test]
fn snapshot_includes_start_after_the_header() {
    let mut wrong = Vec::new();
    let mut snapshots = 0;
    for inc in includes()
        .into_iter()
        .filter(|i| i.path.extension().is_some_and(|e| e == "snap"))
    {
        snapshots += 1;
        let Ok(text) = fs::read_to_string(&inc.path) else {
            continue;
        };
        let header_end = text
            .lines()
            .enumerate()
            .skip(1)
            .find(|(_, l)| *l == "---")
            .map(|(i, _)| i + 2);
        let wanted = header_end.map(|line| format!("{line}:"));
        if inc.spec != wanted {
            wrong.push(format!(
                "{} includes {} from `{}`; the output starts at `{}`",
                inc.page.display(),
                inc.path.display(),
                inc.spec.as_deref().unwrap_or("(the whole file)"),
                wanted.unwrap_or_default()
            ));
        }
    }
    assert!(snapshots > 0, "no page includes a snapshot");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_link_to_a_page_resolves() {
    let pattern = Regex::new(r"\]\(([^)\s#]+\.md)(#[^)\s]*)?\)").expect("regex");
    let mut broken = Vec::new();
    for page in pages() {
        let text = fs::read_to_string(&page).expect("read page");
        for cap in pattern.captures_iter(&text) {
            let target = page.parent().expect("page dir").join(&cap[1]);
            if !cap[1].contains("://") && !target.is_file() {
                broken.push(format!("{} links to {}", page.display(), &cap[1]));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn summary_lists_exactly_the_written_chapters() {
    let summary = fs::read_to_string(book_dir().join("src/SUMMARY.md")).expect("SUMMARY.md");
    let chapter = Regex::new(r"\((ch\d{2}-[a-z0-9-]+)\.md\)").expect("regex");
    let listed: Vec<String> = chapter
        .captures_iter(&summary)
        .map(|c| c[1].to_string())
        .collect();
    let written: Vec<String> = nutshell::chapters::CHAPTERS
        .iter()
        .filter(|c| c.written)
        .map(|c| c.bin.to_string())
        .collect();
    assert_eq!(
        listed, written,
        "SUMMARY.md must list a chapter exactly when it is written"
    );
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("Cargo.toml");
    let bin = Regex::new(r#"name = "(ch\d{2}-[a-z0-9-]+)""#).expect("regex");
    let binaries: Vec<String> = bin
        .captures_iter(&manifest)
        .map(|c| c[1].to_string())
        .collect();
    assert_eq!(
        binaries, written,
        "Cargo.toml must have a [[bin]] for every written chapter, and only those"
    );
}

#[test]
fn mdbook_builds_the_book_with_every_include_expanded() {
    let out = tempfile::tempdir().expect("temp dir");
    let mut book = mdbook_driver::MDBook::load(book_dir()).expect("load the book");
    book.config.build.build_dir = out.path().to_path_buf();
    book.build().expect("build the book");
    for page in pages().iter().filter(|p| !p.ends_with("SUMMARY.md")) {
        let html = out
            .path()
            .join(page.with_extension("html").file_name().expect("name"));
        let text = fs::read_to_string(&html).unwrap_or_else(|e| panic!("{}: {e}", html.display()));
        assert!(
            !text.contains("{{#include"),
            "{} has an unexpanded include",
            html.display()
        );
    }
}

/// The lines of code an anchor include brings into a page: those between the anchor's
/// lines, less any other anchor lines (mdBook drops those).
fn anchored_lines(source: &str, anchor: &str) -> usize {
    let mut inside = false;
    let mut count = 0;
    for line in source.lines() {
        let text = comment_text(line);
        if text == format!("ANCHOR: {anchor}") {
            inside = true;
        } else if text == format!("ANCHOR_END: {anchor}") {
            inside = false;
        } else if inside && !text.starts_with("ANCHOR") {
            count += 1;
        }
    }
    count
}

/// Every chapter page says how much of the chapter's code it shows, and the number is
/// the one its includes of `src/` and `chapters/` add up to: the reader knows the rest
/// lives in the repository, and the sentence cannot drift from the page.
#[test]
fn every_chapter_page_says_how_many_lines_of_code_it_shows() {
    let claim = Regex::new(r"This page shows (\d+) lines of code").expect("regex");
    let mut wrong = Vec::new();
    for page in pages().into_iter().filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ch"))
    }) {
        let shown: usize = includes()
            .iter()
            .filter(|inc| inc.page == page)
            .filter(|inc| {
                let path = inc.path.to_string_lossy();
                path.contains("/../../src/") || path.contains("/../../chapters/")
            })
            .filter_map(|inc| {
                let anchor = inc.spec.as_deref()?;
                let source = fs::read_to_string(&inc.path).ok()?;
                Some(anchored_lines(&source, anchor))
            })
            .sum();
        let text = fs::read_to_string(&page).expect("read page");
        match claim.captures(&text) {
            Some(c) if c[1].parse::<usize>() == Ok(shown) => {}
            Some(c) => wrong.push(format!("{}: says {}, shows {shown}", page.display(), &c[1])),
            None => wrong.push(format!(
                "{}: no \"This page shows N lines of code\" (it shows {shown})",
                page.display()
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
