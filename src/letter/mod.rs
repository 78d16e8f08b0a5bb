//! Official letters as PDF, laid out after GB/T 9704-2012 (党政机关公文格式), the letter format
//! of its clause 10.1 (信函格式, used for 函): the printed form of disclosure to the leadership
//! team (Art 12), to specific ranges (Art 13) and to named complainants and reported persons
//! (Art 9(5)). The letter channel ([`crate::channels::letter`]) calls [`Typesetter::letter`] once
//! per recipient and [`Typesetter::address_sheet`] once per batch.
//!
//! # What is on the page (providers.md §6.2)
//! - A4; text block 156 × 225 mm, 37 mm from the top and 28 mm from the left (binding) edge;
//!   the grid of the standard: 28 characters × 22 lines at 3号 (16 pt).
//! - First page: the issuing organ's mark in red 小标宋, its top edge 30 mm from the page top;
//!   a red double rule (thick over thin) 4 mm below it and one (thin over thick) 20 mm above the
//!   page bottom, both 170 mm long; the reference number (`组干函〔2026〕7号`) flush right under
//!   the first rule; the title in 2号 小标宋, centred; the addressee flush left with a full-width
//!   colon; the body.
//! - Body: paragraphs indented two characters, justified on the grid, with Chinese line breaking
//!   ([`linebreak`]); headings of the four levels — `一、` in 黑体, `（一）` in 楷体, `1.` and
//!   `（1）` in 仿宋 — from `<h2>`…`<h5>` of the template.
//! - Signature without seal: one blank line under the body, the organ right-indented two
//!   characters; the date on the next line, its first character two to the right of the
//!   organ's (when the date is the longer, the date is right-indented two and the organ moves
//!   left). Date in Arabic numerals with the full year, no zero padding (`2026年11月25日`).
//!   The signature never stands alone on a page ("此页无正文" is not allowed): the last two
//!   lines of the body go over with it.
//! - Page numbers from the second page (the letter format shows none on the first):
//!   `— 2 —` in 4号 (14 pt), 7 mm under the text block, odd pages right, even pages left,
//!   one character in from the edge.
//!
//! # Fonts
//! Offices install their licensed 仿宋, 小标宋, 黑体 and 楷体 and name them in the channel file;
//! the default is Noto Serif CJK SC (Debian's `fonts-noto-cjk`, a free Song/Ming face) for body,
//! 楷体 and title (the bold cut) and Noto Sans CJK SC for the 黑体 headings. Fonts are embedded
//! as subsets: a one-page letter is about 30–40 KB whatever the size of the font files.
//!
//! # Why krilla, and not typst
//! Both were weighed for this. typst's figures are the ones measured on this 2-core machine for
//! shared/reference/crates.md §4 (typst was not built again here: its cold build would have
//! held both cores, shared by four builds, for a quarter of an hour); krilla's were measured
//! with this module:
//!
//! | | krilla 0.8 + own line breaking | typst 0.15 as a library (typst-as-lib) |
//! |---|---|---|
//! | clean release build | krilla, lettre and skrifa add 30 crates to Cargo.lock (no rustybuzz: `default-features = false`); the three with every dependency, from nothing: 6 min 15 s (`-j 2`, the machine shared by four builds), most of it crates the project builds anyway (tokio, rustls, ring) | ≈ 6 min 43 s for typst alone, 291 crates, 1.1 GB target dir, 50 MB binary |
//! | Chinese typesetting | this module: the 28 × 22 grid, 禁则, one hung mark, inter-character justification | UAX #14 + CJK rules, CJK–Latin autospacing, paragraph optimisation |
//! | speed (one-page letter, release) | ≈ 9 ms on one core; 1,000 letters: 214–245 letters/s on 2 threads, 133/s through the channel with every file synced | ≈ 3 ms once warm (one letter; 45 ms to parse the font once) |
//! | output | subset CID fonts (CFF of Noto CJK), text extractable, ≈ 38 KB a letter | subset fonts, text extractable, ≈ 14 KB |
//!
//! A letter of this kind is a fixed grid of full-width characters — the standard itself fixes
//! 28 × 22 — so the part of typst that matters here (line breaking) is small: a greedy fill on
//! the grid with the Chinese rules for marks, which the tests check line by line on the PDF.
//! typst's build cost (about three times the build of everything else in the project, on the
//! two cores every build here shares) buys paragraph-level optimisation and CJK–Latin spacing
//! that a 28-cell grid does not need, and krilla is fast enough (the target is 100 letters a
//! second). So: krilla, drawing glyphs placed on the grid by [`layout`] — no shaping engine,
//! since Chinese on a grid is one character, one glyph, one cell.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset};
use serde::Deserialize;

use crate::job::Job;

mod layout;
pub mod linebreak;

pub use layout::Pdf;

/// Where a font is: a file and, for a collection (`.ttc`), the face's index in it
/// (`fc-query -f '%{index} %{family}\n' FILE` lists them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FontSpec {
    pub path: PathBuf,
    #[serde(default)]
    pub index: u32,
}

const NOTO_SERIF: &str = "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc";
const NOTO_SERIF_BOLD: &str = "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc";
const NOTO_SANS: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";
/// Noto CJK collections hold JP, KR, SC, TC, HK in that order: 2 is Simplified Chinese.
const NOTO_SC: u32 = 2;

/// The four faces of GB/T 9704. Each defaults to a Noto CJK SC face from `fonts-noto-cjk`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FontSet {
    /// 仿宋: body text, `1.` and `（1）` headings, reference number, signature, date.
    #[serde(default = "default_body")]
    pub body: FontSpec,
    /// 小标宋: the organ's mark and the title.
    #[serde(default = "default_title")]
    pub title: FontSpec,
    /// 黑体: `一、` headings.
    #[serde(default = "default_heading")]
    pub heading: FontSpec,
    /// 楷体: `（一）` headings.
    #[serde(default = "default_body")]
    pub kai: FontSpec,
}

fn default_body() -> FontSpec {
    FontSpec {
        path: NOTO_SERIF.into(),
        index: NOTO_SC,
    }
}
fn default_title() -> FontSpec {
    FontSpec {
        path: NOTO_SERIF_BOLD.into(),
        index: NOTO_SC,
    }
}
fn default_heading() -> FontSpec {
    FontSpec {
        path: NOTO_SANS.into(),
        index: NOTO_SC,
    }
}

impl Default for FontSet {
    fn default() -> Self {
        FontSet {
            body: default_body(),
            title: default_title(),
            heading: default_heading(),
            kai: default_body(),
        }
    }
}

/// The page of the standard. Offices may adjust for their printers; the defaults are GB/T 9704.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageSpec {
    #[serde(default = "d_top")]
    pub top_mm: f32,
    #[serde(default = "d_left")]
    pub left_mm: f32,
    #[serde(default = "d_width")]
    pub width_mm: f32,
    #[serde(default = "d_height")]
    pub height_mm: f32,
    #[serde(default = "d_chars")]
    pub chars_per_line: u32,
    #[serde(default = "d_lines")]
    pub lines_per_page: u32,
    /// 3号 = 16 pt.
    #[serde(default = "d_size")]
    pub body_pt: f32,
}

fn d_top() -> f32 {
    37.0
}
fn d_left() -> f32 {
    28.0
}
fn d_width() -> f32 {
    156.0
}
fn d_height() -> f32 {
    225.0
}
fn d_chars() -> u32 {
    28
}
fn d_lines() -> u32 {
    22
}
fn d_size() -> f32 {
    16.0
}

impl Default for PageSpec {
    fn default() -> Self {
        PageSpec {
            top_mm: d_top(),
            left_mm: d_left(),
            width_mm: d_width(),
            height_mm: d_height(),
            chars_per_line: d_chars(),
            lines_per_page: d_lines(),
            body_pt: d_size(),
        }
    }
}

impl PageSpec {
    /// Every problem at once, in sentences.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(0.0..=100.0).contains(&self.top_mm) || !(0.0..=100.0).contains(&self.left_mm) {
            p.push("page.top_mm and page.left_mm must be between 0 and 100".into());
        }
        if self.left_mm + self.width_mm > 210.0 || self.width_mm < 50.0 {
            p.push(format!(
                "page.width_mm {} with page.left_mm {} does not fit on A4 (210 mm wide)",
                self.width_mm, self.left_mm
            ));
        }
        if self.top_mm + self.height_mm > 297.0 - 20.0 || self.height_mm < 50.0 {
            p.push(format!(
                "page.height_mm {} with page.top_mm {} leaves no room for the page number on A4 (297 mm high)",
                self.height_mm, self.top_mm
            ));
        }
        if !(10..=40).contains(&self.chars_per_line) || !(10..=40).contains(&self.lines_per_page) {
            p.push("page.chars_per_line and page.lines_per_page must be 10–40".into());
        }
        if !(8.0..=30.0).contains(&self.body_pt) {
            p.push("page.body_pt must be 8–30 points".into());
        }
        p
    }
}

/// Who issues the letters and how they are signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    /// The issuing organ's mark (发文机关标志), in red at the top of the first page.
    pub organ_mark: String,
    /// The organ in the signature block (发文机关署名).
    pub signature: String,
    /// 机关代字 of the reference number: `组干函` in `组干函〔2026〕7号`.
    pub reference_prefix: String,
    /// After the addressee's name: `同志` gives `王五同志：`.
    pub salutation: String,
    /// The sender's address and postcode printed on the address sheet.
    pub sender_address: Option<String>,
    pub sender_postcode: Option<String>,
    pub page: PageSpec,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            organ_mark: "中共示例县委组织部".into(),
            signature: "中共示例县委组织部".into(),
            reference_prefix: "组干函".into(),
            salutation: "同志".into(),
            sender_address: None,
            sender_postcode: None,
            page: PageSpec::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("font {role} ({path}): {message}")]
    Font {
        role: &'static str,
        path: String,
        message: String,
    },
    #[error("the letter body cannot be laid out: {0}")]
    Body(String),
    #[error("the PDF cannot be written: {0}")]
    Pdf(String),
}

/// A font loaded once: krilla's handle for embedding, and the character map with advances
/// (in em) for placing glyphs on the grid without shaping each line.
pub(crate) struct LoadedFont {
    pub font: krilla::text::Font,
    pub glyphs: HashMap<char, (u32, f32)>,
    pub name: String,
}

impl LoadedFont {
    fn load(
        role: &'static str,
        spec: &FontSpec,
        cache: &mut HashMap<PathBuf, Arc<Vec<u8>>>,
    ) -> Result<Arc<LoadedFont>, LetterError> {
        use skrifa::MetadataProvider;
        let err = |message: String| LetterError::Font {
            role,
            path: spec.path.display().to_string(),
            message,
        };
        let data = match cache.get(&spec.path) {
            Some(d) => d.clone(),
            None => {
                let bytes = std::fs::read(&spec.path).map_err(|e| {
                    err(format!(
                        "cannot be read: {e} (the default fonts come with Debian's fonts-noto-cjk: apt-get install fonts-noto-cjk)"
                    ))
                })?;
                let d = Arc::new(bytes);
                cache.insert(spec.path.clone(), d.clone());
                d
            }
        };
        let face = skrifa::FontRef::from_index(&data, spec.index).map_err(|e| {
            err(format!(
                "face {} cannot be read: {e} (for a .ttc, `fc-query` lists the faces)",
                spec.index
            ))
        })?;
        let upem = face
            .metrics(
                skrifa::instance::Size::unscaled(),
                skrifa::instance::LocationRef::default(),
            )
            .units_per_em as f32;
        let metrics = face.glyph_metrics(
            skrifa::instance::Size::unscaled(),
            skrifa::instance::LocationRef::default(),
        );
        let mut glyphs = HashMap::with_capacity(32_768);
        for (cp, gid) in face.charmap().mappings() {
            if let Some(c) = char::from_u32(cp) {
                let adv = metrics.advance_width(gid).unwrap_or(upem) / upem;
                glyphs.insert(c, (gid.to_u32(), adv));
            }
        }
        if !glyphs.contains_key(&'中') {
            return Err(err(format!(
                "face {} has no Chinese characters (no glyph for 中)",
                spec.index
            )));
        }
        let name = face
            .localized_strings(skrifa::string::StringId::FAMILY_NAME)
            .english_or_first()
            .map(|s| s.to_string())
            .unwrap_or_else(|| spec.path.display().to_string());
        let font = krilla::text::Font::new(krilla::Data::from(data.clone()), spec.index)
            .ok_or_else(|| err("krilla cannot read the face".into()))?;
        Ok(Arc::new(LoadedFont { font, glyphs, name }))
    }
}

/// The loaded faces.
pub(crate) struct Faces {
    pub body: Arc<LoadedFont>,
    pub title: Arc<LoadedFont>,
    pub heading: Arc<LoadedFont>,
    pub kai: Arc<LoadedFont>,
}

/// Fonts loaded and style fixed: lays out any number of letters, from any thread.
pub struct Typesetter {
    pub(crate) faces: Faces,
    pub style: Style,
}

impl std::fmt::Debug for Typesetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typesetter")
            .field("body", &self.faces.body.name)
            .field("title", &self.faces.title.name)
            .field("style", &self.style)
            .finish()
    }
}

/// One letter's content.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter {
    /// `组干函〔2026〕7号`.
    pub reference: String,
    pub title: String,
    /// The addressee as written: `王五同志`.
    pub addressee: String,
    /// The body from the template: `<p>`, `<h2>`…`<h5>`, `<br>`, HTML-escaped text.
    pub body_html: String,
    /// `2026年11月25日`.
    pub date: String,
}

/// A line of the address sheet for the print room.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub name: String,
    /// `None`: no postal address; delivered by hand.
    pub postcode: Option<String>,
    pub address: Vec<String>,
    /// What the print room matches the envelope with: the letter's file and reference number.
    pub tag: String,
}

impl Typesetter {
    /// Load the fonts (at start-up: a missing font fails the configuration, not the first letter).
    pub fn new(fonts: &FontSet, style: Style) -> Result<Typesetter, LetterError> {
        let mut cache = HashMap::new();
        let faces = Faces {
            body: LoadedFont::load("body", &fonts.body, &mut cache)?,
            title: LoadedFont::load("title", &fonts.title, &mut cache)?,
            heading: LoadedFont::load("heading", &fonts.heading, &mut cache)?,
            kai: LoadedFont::load("kai", &fonts.kai, &mut cache)?,
        };
        Ok(Typesetter { faces, style })
    }

    /// Family names of the faces (body, title, heading, kai), for logs and the manifest.
    pub fn font_names(&self) -> [&str; 4] {
        [
            &self.faces.body.name,
            &self.faces.title.name,
            &self.faces.heading.name,
            &self.faces.kai.name,
        ]
    }

    /// Lay out one letter.
    pub fn letter(&self, letter: &Letter) -> Result<Pdf, LetterError> {
        let blocks = parse_body(&letter.body_html).map_err(LetterError::Body)?;
        layout::letter(self, letter, &blocks)
    }

    /// The envelopes of a batch, three to an A4 page.
    pub fn address_sheet(&self, title: &str, envelopes: &[Envelope]) -> Result<Pdf, LetterError> {
        layout::address_sheet(self, title, envelopes)
    }
}

/// A block of the letter body.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Level 1–4: `<h2>` 一、 … `<h5>` （1）.
    Heading(u8, String),
    /// Lines of a paragraph (`<br>` splits it; each part breaks on its own).
    Paragraph(Vec<String>),
}

/// Read the body HTML the templates produce (render.rs allows only these tags).
pub fn parse_body(html: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut rest = html;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(blocks);
        }
        if !rest.starts_with('<') {
            // Text outside any block: a paragraph of its own.
            let end = rest.find('<').unwrap_or(rest.len());
            blocks.push(Block::Paragraph(vec![decode(rest[..end].trim())]));
            rest = &rest[end..];
            continue;
        }
        let close = rest.find('>').ok_or("a tag is not closed")?;
        let tag = rest[1..close].trim().to_ascii_lowercase();
        rest = &rest[close + 1..];
        let tag = tag.trim_end_matches('/').trim().to_string();
        if tag == "br" {
            continue;
        }
        let level = match tag.as_str() {
            "p" => 0,
            "h2" => 1,
            "h3" => 2,
            "h4" => 3,
            "h5" => 4,
            other => return Err(format!("<{other}> is not a letter element")),
        };
        let end_tag = format!("</{tag}>");
        let end = rest
            .to_ascii_lowercase()
            .find(&end_tag)
            .ok_or_else(|| format!("<{tag}> is not closed"))?;
        let inner = &rest[..end];
        rest = &rest[end + end_tag.len()..];
        let parts: Vec<String> = split_br(inner)
            .iter()
            .map(|s| decode(s.trim()))
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            continue;
        }
        if level == 0 {
            blocks.push(Block::Paragraph(parts));
        } else {
            blocks.push(Block::Heading(level, parts.concat()));
        }
    }
}

fn split_br(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.last_mut().expect("non-empty").push_str(&rest[..i]);
        let close = rest[i..].find('>').map(|c| i + c + 1).unwrap_or(rest.len());
        let tag = rest[i + 1..close.saturating_sub(1).max(i + 1)]
            .trim()
            .trim_end_matches('/')
            .trim()
            .to_ascii_lowercase();
        if tag == "br" {
            out.push(String::new());
        }
        rest = &rest[close..];
    }
    out.last_mut().expect("non-empty").push_str(rest);
    out
}

/// Undo the escaping of the HTML registry (`&amp; &lt; &gt; &quot; &#x27; &#x60; &#x3D;`) and any
/// other numeric or common named entity.
pub fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(semi) = after.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let name = &after[..semi];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    // Whitespace inside a block is the template's line structure, not the text's.
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("\u{a0}", " ")
}

/// `2026年11月25日`: GB/T 9704 7.3.5 — Arabic numerals, the full year, no zero padding.
pub fn chinese_date(t: DateTime<FixedOffset>) -> String {
    format!("{}年{}月{}日", t.year(), t.month(), t.day())
}

/// The reference number (发文字号) of a job's letters, stable for the job so that every letter
/// of one delivery — and a letter printed again — carries the same number:
/// 1. `data.document_number` when the job gives one (the upstream system numbers its letters);
/// 2. else the serial of the approval's reference under this channel's prefix: approval
///    `组干审〔2026〕16号` gives `组干函〔2026〕16号` (one approval, one letter);
/// 3. else a number derived from the job id (1–999) in the year of the approval.
pub fn document_number(job: &Job, prefix: &str) -> String {
    if let Some(serde_json::Value::String(n)) = job.data.get("document_number")
        && !n.trim().is_empty()
    {
        return n.trim().to_string();
    }
    if let Some((year, serial)) = year_and_serial(&job.approval.reference) {
        return format!("{prefix}〔{year}〕{serial}号");
    }
    let h = crate::ledger::audit::sha256_hex(job.id.as_bytes());
    let n = u32::from_str_radix(&h[..6], 16).unwrap_or(0) % 999 + 1;
    format!("{prefix}〔{}〕{n}号", job.approval.approved_at.year())
}

/// `…〔2026〕16号` → (2026, 16).
fn year_and_serial(reference: &str) -> Option<(u32, u32)> {
    let open = reference.find('〔')?;
    let close = reference.find('〕')?;
    let year: u32 = reference.get(open + '〔'.len_utf8()..close)?.parse().ok()?;
    let tail = reference.get(close + '〕'.len_utf8()..)?;
    let serial: u32 = tail.strip_suffix('号')?.parse().ok()?;
    (serial > 0).then_some((year, serial))
}

/// Where the fonts of a default installation are, for tools and tests that want to say what
/// is missing.
pub fn default_font_paths() -> [&'static Path; 3] {
    [
        Path::new(NOTO_SERIF),
        Path::new(NOTO_SERIF_BOLD),
        Path::new(NOTO_SANS),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_html_becomes_blocks() {
        let html = "<p>关于反映你的有关问题（案件编号：JD&amp;1），现告知如下：</p>\n<h2>一、调查核实情况</h2>\n<p>第一行<br>第二行</p>\n<h3>（一）基本情况</h3><h4>1.甲</h4><h5>（1）乙</h5><p>  </p>";
        let b = parse_body(html).unwrap();
        assert_eq!(
            b,
            vec![
                Block::Paragraph(vec![
                    "关于反映你的有关问题（案件编号：JD&1），现告知如下：".into()
                ]),
                Block::Heading(1, "一、调查核实情况".into()),
                Block::Paragraph(vec!["第一行".into(), "第二行".into()]),
                Block::Heading(2, "（一）基本情况".into()),
                Block::Heading(3, "1.甲".into()),
                Block::Heading(4, "（1）乙".into()),
            ]
        );
        assert!(parse_body("<table>x</table>").is_err());
        assert!(parse_body("<p>x").is_err());
    }

    #[test]
    fn entities_of_the_html_registry_are_undone() {
        assert_eq!(
            decode("A&amp;B &lt;c&gt; &quot;d&quot; &#x27;e&#x27; &#x60; &#x3D; &#20013; & x"),
            "A&B <c> \"d\" 'e' ` = 中 & x"
        );
    }

    #[test]
    fn dates_are_written_as_the_standard_says() {
        let t = DateTime::parse_from_rfc3339("2026-04-03T09:00:00+08:00").unwrap();
        assert_eq!(chinese_date(t), "2026年4月3日");
    }

    #[test]
    fn the_reference_number_is_stable_for_a_job() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples/jobs/03-investigation-result-letters.json"),
        )
        .unwrap();
        let mut job = crate::job::parse(text.as_bytes()).unwrap().job;
        // The approval 组干审〔2026〕16号 gives the letter its serial.
        assert_eq!(document_number(&job, "组干函"), "组干函〔2026〕16号");
        job.data
            .insert("document_number".into(), "组干函〔2026〕7号".into());
        assert_eq!(document_number(&job, "组干函"), "组干函〔2026〕7号");
        job.data.remove("document_number");
        job.approval.reference = "口头批准".into();
        let a = document_number(&job, "组干函");
        assert_eq!(a, document_number(&job, "组干函"));
        assert!(a.starts_with("组干函〔2026〕") && a.ends_with('号'), "{a}");
        job.id = "another".into();
        assert_ne!(a, document_number(&job, "组干函"));
    }
}
