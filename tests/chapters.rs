//! The chapter map in `src/chapters.rs`, the README, the book's introduction and the
//! repository agree: a written chapter has all four parts, an unwritten one is marked.

use std::fs;
use std::path::Path;

use nutshell::chapters::CHAPTERS;

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn every_written_chapter_has_its_four_parts() {
    let manifest = read("Cargo.toml");
    let exercises = read("exercises/info.toml");
    for chapter in CHAPTERS.iter().filter(|c| c.written) {
        let bin = chapter.bin;
        assert!(
            manifest.contains(&format!("path = \"chapters/{bin}.rs\"")),
            "{bin}: no [[bin]]"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("book/src/{bin}.md"))
                .is_file(),
            "{bin}: no page"
        );
        let tests = read(&format!("tests/{}.rs", bin.replace('-', "_")));
        assert!(
            tests.contains("assert_snapshot"),
            "{bin}: its tests take no snapshot"
        );
        assert!(
            exercises.contains(&format!("name = \"{bin}\"")),
            "{bin}: no exercise in exercises/info.toml"
        );
    }
}

/// In a chapter table, the row of each chapter: a written one links its page, an
/// unwritten one says so.
fn check_table(document: &str, text: &str) {
    for (number, chapter) in CHAPTERS.iter().enumerate() {
        let short = chapter
            .bin
            .split_once('-')
            .map(|(_, s)| s)
            .unwrap_or(chapter.bin);
        let row = text
            .lines()
            .find(|l| {
                l.starts_with('|')
                    && (l.contains(chapter.bin) || l.contains(&format!("{}. {short}", number + 1)))
            })
            .unwrap_or_else(|| panic!("{document} has no row for {}", chapter.bin));
        if chapter.written {
            assert!(
                row.contains(&format!("{}.md", chapter.bin)),
                "{document}: {} should link its page: {row}",
                chapter.bin
            );
        } else {
            assert!(
                row.contains("not written yet"),
                "{document}: {} should be marked unwritten: {row}",
                chapter.bin
            );
        }
    }
}

#[test]
fn readme_chapter_table_marks_what_is_written() {
    check_table("README.md", &read("README.md"));
}

#[test]
fn introduction_chapter_table_marks_what_is_written() {
    check_table(
        "book/src/introduction.md",
        &read("book/src/introduction.md"),
    );
}
