//! The Hinglish edition: `cargo xtask book`, `cargo xtask i18n update|check`.
//!
//! The English chapters are the source. `mdbook-xgettext` (mdbook-i18n-helpers, installed by
//! `scripts/setup.sh`) cuts the book, its includes expanded, into messages: a paragraph, a list
//! item, a heading, a table cell. The ones with words to translate are the catalogue's
//! (`po/hi-Latn.po`); code blocks, console requests, recorded outputs, numbers and identifiers
//! are the same runs in both editions, so they stay out of it and `mdbook-gettext` leaves them
//! as they are. A heading's translation ends with `{#its-english-id}`, so that links to it
//! work in both editions.
//!
//! [`check`] is what keeps the edition complete: every message of the English text has a
//! translation in the catalogue, none of them fuzzy. `tests/book.rs` runs it, so a change to
//! an English paragraph is not done until the Hinglish says it too: `cargo xtask i18n update`
//! adds the new message (untranslated) to the catalogue and drops the old one.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use regex::Regex;

use crate::book::root;

/// The second edition's language: Hindi in the Latin script.
pub const LANGUAGE: &str = "hi-Latn";

/// One message of a catalogue: the English text, its translation, where it comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub id: String,
    pub translation: String,
    pub fuzzy: bool,
    pub sources: Vec<String>,
}

/// `po/hi-Latn.po`.
pub fn catalogue_path() -> PathBuf {
    root().join("po").join(format!("{LANGUAGE}.po"))
}

/// Builds both editions: the English book in `book/`, the Hinglish one in `book/hi-Latn/`.
pub fn build_both() -> Result<()> {
    mdbook(&["build"], &[])?;
    let dir = format!("book/{LANGUAGE}");
    // Its pages live under /hi-Latn/: the 404 page, which may be shown at any address, loads
    // its scripts from there (`site-url`), not the English edition's.
    let site = format!("/{LANGUAGE}/");
    mdbook(
        &["build", "-d", &dir],
        &[
            ("MDBOOK_BOOK__LANGUAGE", LANGUAGE),
            ("MDBOOK_OUTPUT__HTML__SITE_URL", &site),
        ],
    )?;
    println!("English: book/index.html; Hinglish: {dir}/index.html");
    Ok(())
}

fn mdbook(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let status = Command::new("mdbook")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .context("running mdbook (scripts/setup.sh installs it)")?;
    if !status.success() {
        bail!("mdbook {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The messages of the English text that have words to translate, in book order.
pub fn english_messages() -> Result<Vec<Message>> {
    let out =
        std::env::temp_dir().join(format!("occ-book-pot-{}", std::process::id()));
    let config = r#"{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}"#;
    let output = Command::new("mdbook")
        .args(["build", "-d"])
        .arg(&out)
        .env("MDBOOK_OUTPUT", config)
        .current_dir(root())
        .output()
        .context(
            "running mdbook with mdbook-xgettext (scripts/setup.sh installs both)",
        )?;
    if !output.status.success() {
        bail!(
            "extracting the messages failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let pot = fs::read_to_string(out.join("messages.pot"));
    fs::remove_dir_all(&out).ok();
    let pot = pot.context("mdbook-xgettext wrote no messages.pot")?;
    Ok(parse(&pot)?
        .into_iter()
        .filter(|m| !m.id.is_empty() && has_words(&m.id))
        .collect())
}

/// Whether a message has words a reader of the other edition reads: not a code block, not a
/// comment or a string literal of a listing (Rust's or Python's), and a word of letters outside
/// code spans, link targets and HTML.
pub fn has_words(id: &str) -> bool {
    if ["```", "//", "/*", "# "].iter().any(|p| id.starts_with(p)) {
        return false;
    }
    // A string literal of a listing: the whole message, or one holding escaped quotes or
    // format braces. A paragraph may open with a quote ("500 instead of 800": ...).
    let literal = Regex::new(r#"^("[^"]*"|'[^']*')[,;)]*$"#).expect("a regex");
    let quoted = id.starts_with('"') || id.starts_with('\'');
    if literal.is_match(id) || (quoted && (id.contains("\\\"") || id.contains('{')))
    {
        return false;
    }
    // A server and the path it came by, as the generated tables of results name it.
    let server =
        Regex::new(r"^\d+(\.\d+)+ \((local|container|url)\)$").expect("a regex");
    if server.is_match(id) {
        return false;
    }
    let code = Regex::new(r"`[^`]*`|\]\([^)]*\)|<[^>]+>").expect("a regex");
    let words = Regex::new(r"[A-Za-z]{2,}").expect("a regex");
    words.is_match(&code.replace_all(id, " "))
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Completeness {
    pub messages: usize,
    pub untranslated: Vec<String>,
    pub fuzzy: Vec<String>,
}

/// Every message of the English text against the catalogue.
pub fn check() -> Result<Completeness> {
    let translations = read_catalogue()?;
    let mut found = Completeness::default();
    for message in english_messages()? {
        found.messages += 1;
        match translations.get(&message.id) {
            Some(t) if t.fuzzy => found.fuzzy.push(message.id),
            Some(t) if !t.translation.trim().is_empty() => {}
            _ => found.untranslated.push(message.id),
        }
    }
    Ok(found)
}

/// Rewrites the catalogue from the English text: every message in book order, with its
/// translation if the catalogue had one for that very text, else untranslated.
pub fn update() -> Result<Completeness> {
    let old = read_catalogue().unwrap_or_default();
    let mut messages = english_messages()?;
    for message in &mut messages {
        if let Some(known) = old.get(&message.id) {
            message.translation = known.translation.clone();
            message.fuzzy = known.fuzzy;
        }
    }
    fs::create_dir_all(root().join("po"))?;
    fs::write(catalogue_path(), write(&messages))?;
    check()
}

fn read_catalogue() -> Result<HashMap<String, Message>> {
    let path = catalogue_path();
    let text = fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(parse(&text)?
        .into_iter()
        .filter(|m| !m.id.is_empty())
        .map(|m| (m.id.clone(), m))
        .collect())
}

/// Reads a PO file: `#:` sources, `#, fuzzy`, and `msgid`/`msgstr` over one or more quoted
/// lines.
pub fn parse(text: &str) -> Result<Vec<Message>> {
    let mut messages = Vec::new();
    for block in text.split("\n\n") {
        let mut message = Message::default();
        let mut into_id = None;
        let mut any = false;
        for line in block.lines() {
            if let Some(sources) = line.strip_prefix("#:") {
                message
                    .sources
                    .extend(sources.split_whitespace().map(String::from));
            } else if let Some(flags) = line.strip_prefix("#,") {
                message.fuzzy |= flags.split(',').any(|f| f.trim() == "fuzzy");
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            } else if let Some(rest) = line.strip_prefix("msgid ") {
                message.id = unquote(rest)?;
                into_id = Some(true);
                any = true;
            } else if let Some(rest) = line.strip_prefix("msgstr ") {
                message.translation = unquote(rest)?;
                into_id = Some(false);
            } else if line.starts_with('"') {
                match into_id {
                    Some(true) => message.id.push_str(&unquote(line)?),
                    Some(false) => message.translation.push_str(&unquote(line)?),
                    None => bail!("a quoted line before msgid: {line}"),
                }
            } else {
                bail!("a line this reader does not know: {line}");
            }
        }
        if any {
            messages.push(message);
        }
    }
    Ok(messages)
}

fn unquote(quoted: &str) -> Result<String> {
    let inner = quoted
        .trim()
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .with_context(|| format!("not a quoted string: {quoted}"))?;
    let mut text = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => text.push('\n'),
            Some('t') => text.push('\t'),
            Some('"') => text.push('"'),
            Some('\\') => text.push('\\'),
            other => bail!("an escape this reader does not know: \\{other:?}"),
        }
    }
    Ok(text)
}

/// Writes a catalogue, the header mdbook-gettext needs first.
pub fn write(messages: &[Message]) -> String {
    let mut po = String::from(concat!(
        "msgid \"\"\nmsgstr \"\"\n",
        "\"Project-Id-Version: Optimistic Concurrency Control in Elasticsearch, in Rust\\n\"\n",
        "\"POT-Creation-Date: \\n\"\n",
        "\"PO-Revision-Date: \\n\"\n",
        "\"Last-Translator: \\n\"\n",
        "\"Language-Team: Hinglish\\n\"\n",
        "\"MIME-Version: 1.0\\n\"\n",
        "\"Content-Type: text/plain; charset=UTF-8\\n\"\n",
        "\"Content-Transfer-Encoding: 8bit\\n\"\n",
        "\"Language: hi-Latn\\n\"\n",
        "\"Plural-Forms: nplurals=2; plural=(n != 1);\\n\"\n",
    ));
    for message in messages {
        po.push('\n');
        if !message.sources.is_empty() {
            po.push_str(&format!("#: {}\n", message.sources.join(" ")));
        }
        if message.fuzzy {
            po.push_str("#, fuzzy\n");
        }
        po.push_str(&format!("msgid {}\n", quote(&message.id)));
        po.push_str(&format!("msgstr {}\n", quote(&message.translation)));
    }
    po
}

fn quote(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\t', "\\t");
    let lines: Vec<&str> = escaped.split('\n').collect();
    if lines.len() == 1 {
        return format!("\"{escaped}\"");
    }
    let mut out = String::from("\"\"");
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        if last && line.is_empty() {
            break;
        }
        out.push_str(&format!("\n\"{line}{}\"", if last { "" } else { "\\n" }));
    }
    out
}

/// `cargo xtask i18n update|check`.
pub fn run(args: &[&str]) -> Result<()> {
    let found = match args {
        ["update"] => update()?,
        ["check"] => check()?,
        _ => bail!("usage: cargo xtask i18n update|check"),
    };
    println!(
        "{}: {} messages, {} untranslated, {} fuzzy",
        catalogue_path().display(),
        found.messages,
        found.untranslated.len(),
        found.fuzzy.len()
    );
    for id in found.untranslated.iter().chain(&found.fuzzy).take(10) {
        println!(
            "  needs a translation: {}",
            id.chars().take(100).collect::<String>()
        );
    }
    if !found.untranslated.is_empty() || !found.fuzzy.is_empty() {
        bail!(
            "the Hinglish edition is not complete: `cargo xtask i18n update`, then translate"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalogue written and read back is the same, multi-line messages and quotes included.
    #[test]
    fn a_catalogue_reads_back_as_written() {
        let messages = vec![
            Message {
                id: "One \"line\"".into(),
                translation: "Ek \"line\"".into(),
                fuzzy: false,
                sources: vec!["src/a.md".into()],
            },
            Message {
                id: "two\nlines\n".into(),
                translation: String::new(),
                fuzzy: true,
                sources: vec![],
            },
        ];
        let read = parse(&write(&messages)).unwrap();
        assert_eq!(&read[1..], &messages[..]);
    }

    /// Only messages with words to translate are the catalogue's.
    #[test]
    fn code_numbers_and_identifiers_have_no_words() {
        assert!(has_words("The `_seq_no` of [chapter 5](ch05.md#x) is 3."));
        assert!(has_words(
            "\"500 instead of 800\": both should leave **300**."
        ));
        for id in [
            "\"HTTP {status}, \\\"errors\\\": {errors}\"",
            "\"PUT {id} {{\\\"price\\\":{price}}}\"",
            "```http\nGET /\n```",
            "// a comment",
            "# a Python comment\n",
            "'a Python literal'",
            "\"a literal\"",
            "250",
            "`if_seq_no`",
        ] {
            assert!(!has_words(id), "{id}");
        }
    }
}
