//! The geometry of the page and the drawing: rows on the grid of the standard, glyphs placed
//! cell by cell (no shaping is needed for Chinese set on a grid: one character, one glyph, one
//! cell), rules and boxes as filled rectangles.

use std::sync::Arc;

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{GlyphId, KrillaGlyph};

use super::linebreak::{self, Line, Unit};
use super::{Block, Envelope, Letter, LetterError, LoadedFont, Typesetter};

/// A finished PDF.
#[derive(Debug, Clone)]
pub struct Pdf {
    pub bytes: Vec<u8>,
    pub pages: usize,
}

const MM: f32 = 72.0 / 25.4;
const PAGE_W: f32 = 210.0 * MM;
const PAGE_H: f32 = 297.0 * MM;
/// Where the ideographic em box's middle sits above the baseline (Noto CJK: ascent 0.88,
/// descent 0.12), so that a character can be centred in its line.
const EM_MIDDLE: f32 = 0.38;
const RED: (u8, u8, u8) = (230, 0, 18);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Face {
    Body,
    Title,
    Heading,
    Kai,
}

/// A piece of text on a row.
#[derive(Clone, Debug)]
struct Run {
    face: Face,
    size: f32,
    x: f32,
    units: Vec<Unit>,
    /// Added after every unit but the last (justification).
    extra: f32,
    red: bool,
}

#[derive(Clone, Debug)]
enum Row {
    Blank,
    Text(Vec<Run>),
}

/// The grid of the page.
struct Grid {
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    cell: f32,
    pitch: f32,
    size: f32,
    lines: usize,
}

impl Grid {
    fn new(ts: &Typesetter) -> Grid {
        let p = &ts.style.page;
        Grid {
            left: p.left_mm * MM,
            top: p.top_mm * MM,
            width: p.width_mm * MM,
            height: p.height_mm * MM,
            cell: p.width_mm * MM / p.chars_per_line as f32,
            pitch: p.height_mm * MM / p.lines_per_page as f32,
            size: p.body_pt,
            lines: p.lines_per_page as usize,
        }
    }

    fn right(&self) -> f32 {
        self.left + self.width
    }

    fn baseline(&self, row: usize) -> f32 {
        self.top + row as f32 * self.pitch + self.pitch / 2.0 + EM_MIDDLE * self.size
    }
}

impl Typesetter {
    fn face(&self, f: Face) -> &Arc<LoadedFont> {
        match f {
            Face::Body => &self.faces.body,
            Face::Title => &self.faces.title,
            Face::Heading => &self.faces.heading,
            Face::Kai => &self.faces.kai,
        }
    }

    /// Units of `text` in `face` at `size`, full-width characters one `cell` each.
    fn units(&self, face: Face, size: f32, cell: f32, text: &str) -> Vec<Unit> {
        let font = self.face(face);
        let half = |s: &str| -> f32 {
            s.chars()
                .map(|c| font.glyphs.get(&c).map_or(0.5, |g| g.1) * size)
                .sum()
        };
        linebreak::units(text, cell, &half)
    }
}

fn width(units: &[Unit]) -> f32 {
    units.iter().map(|u| u.width).sum()
}

/// A line of a paragraph as a run: indented, and spread to `measure` when it is not the last.
fn line_run(face: Face, size: f32, x: f32, line: &Line, measure: f32, cell: f32) -> Run {
    let w = line.width(measure);
    let gaps = line.units.len().saturating_sub(1);
    let mut extra = if line.justify && gaps > 0 && w < measure {
        (measure - w) / gaps as f32
    } else {
        0.0
    };
    // A line cut short by a long number would spread into holes: leave it ragged.
    if extra > cell * 0.5 {
        extra = 0.0;
    }
    Run {
        face,
        size,
        x,
        units: line.units.clone(),
        extra,
        red: false,
    }
}

fn fill(color: (u8, u8, u8)) -> Fill {
    Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn rect(surface: &mut Surface, x: f32, y: f32, w: f32, h: f32, color: (u8, u8, u8)) {
    let mut pb = PathBuilder::new();
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        pb.push_rect(r);
    }
    if let Some(path) = pb.finish() {
        surface.set_fill(Some(fill(color)));
        surface.set_stroke(None);
        surface.draw_path(&path);
    }
}

fn frame(surface: &mut Surface, x: f32, y: f32, w: f32, h: f32, color: (u8, u8, u8), line: f32) {
    let mut pb = PathBuilder::new();
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        pb.push_rect(r);
    }
    if let Some(path) = pb.finish() {
        surface.set_fill(None);
        surface.set_stroke(Some(Stroke {
            paint: rgb::Color::new(color.0, color.1, color.2).into(),
            width: line,
            ..Default::default()
        }));
        surface.draw_path(&path);
        surface.set_stroke(None);
    }
}

/// Draw a run with its baseline at `baseline`: full-width characters centred in their cells,
/// half-width ones at their own advance.
fn draw_run(ts: &Typesetter, surface: &mut Surface, run: &Run, baseline: f32) {
    let font = ts.face(run.face);
    let mut text = String::new();
    let mut glyphs = Vec::new();
    let n = run.units.len();
    for (k, u) in run.units.iter().enumerate() {
        let chars: Vec<char> = u.text.chars().collect();
        for (ci, &c) in chars.iter().enumerate() {
            let start = text.len();
            text.push(c);
            let (gid, adv) = font.glyphs.get(&c).copied().unwrap_or((0, 0.5));
            let natural = adv * run.size;
            let (mut advance, offset) = if linebreak::full_width(c) && chars.len() == 1 {
                (u.width, (u.width - natural) / 2.0)
            } else {
                (natural, 0.0)
            };
            if ci + 1 == chars.len() && k + 1 < n {
                advance += run.extra;
            }
            glyphs.push(KrillaGlyph::new(
                GlyphId::new(gid),
                advance / run.size,
                offset / run.size,
                0.0,
                0.0,
                start..text.len(),
                None,
            ));
        }
    }
    if glyphs.is_empty() {
        return;
    }
    surface.set_stroke(None);
    surface.set_fill(Some(if run.red { fill(RED) } else { Fill::default() }));
    surface.draw_glyphs(
        Point::from_xy(run.x, baseline),
        &glyphs,
        font.font.clone(),
        &text,
        run.size,
        false,
    );
}

fn document(title: &str) -> Document {
    let mut doc = Document::new();
    doc.set_metadata(
        Metadata::new()
            .title(title.to_string())
            .creator("disclose".into())
            .language("zh-CN".into()),
    );
    doc
}

fn finish(doc: Document, pages: usize) -> Result<Pdf, LetterError> {
    let bytes = doc
        .finish()
        .map_err(|e| LetterError::Pdf(format!("{e:?}")))?;
    Ok(Pdf { bytes, pages })
}

/// The rows of the first page's head and the body, then the signature block.
struct Flow {
    rows: Vec<Row>,
    signature: [Row; 2],
}

fn flow(ts: &Typesetter, letter: &Letter, blocks: &[Block], g: &Grid) -> Flow {
    let (cell, size) = (g.cell, g.size);
    let mut rows = Vec::new();
    // Reference number, flush right under the rule.
    let reference = ts.units(Face::Body, size, cell, &letter.reference);
    rows.push(Row::Text(vec![Run {
        face: Face::Body,
        size,
        x: g.right() - width(&reference),
        units: reference,
        extra: 0.0,
        red: false,
    }]));
    rows.push(Row::Blank);
    // Title: 2号 (22 pt) centred; several lines in a trapezoid (longer above).
    let tsize = 22.0_f32.min(g.pitch * 0.9);
    let tunits = ts.units(Face::Title, tsize, tsize, &letter.title);
    let mut tlines = linebreak::break_lines(&tunits, g.width - 2.0 * cell, 0.0);
    if tlines.len() > 1 {
        let target = width(&tunits) / tlines.len() as f32 + tsize;
        tlines = linebreak::break_lines(&tunits, target.min(g.width - 2.0 * cell), 0.0);
    }
    for l in &tlines {
        let w = l.width(f32::MAX);
        rows.push(Row::Text(vec![Run {
            face: Face::Title,
            size: tsize,
            x: g.left + (g.width - w) / 2.0,
            units: l.units.clone(),
            extra: 0.0,
            red: false,
        }]));
    }
    rows.push(Row::Blank);
    // Addressee, flush left, full-width colon.
    let to = ts.units(Face::Body, size, cell, &format!("{}：", letter.addressee));
    for l in linebreak::break_lines(&to, g.width, 0.0) {
        rows.push(Row::Text(vec![line_run(
            Face::Body,
            size,
            g.left,
            &l,
            g.width,
            cell,
        )]));
    }
    // Body: every paragraph and heading indented two characters.
    let indent = 2.0 * cell;
    let para = |face: Face, text: &str, rows: &mut Vec<Row>| {
        let units = ts.units(face, size, cell, text);
        for (i, l) in linebreak::break_lines(&units, g.width, indent)
            .iter()
            .enumerate()
        {
            let (x, measure) = if i == 0 {
                (g.left + indent, g.width - indent)
            } else {
                (g.left, g.width)
            };
            rows.push(Row::Text(vec![line_run(face, size, x, l, measure, cell)]));
        }
    };
    for b in blocks {
        match b {
            Block::Paragraph(parts) => {
                for p in parts {
                    para(Face::Body, p, &mut rows);
                }
            }
            Block::Heading(level, text) => {
                let face = match level {
                    1 => Face::Heading,
                    2 => Face::Kai,
                    _ => Face::Body,
                };
                para(face, text, &mut rows);
            }
        }
    }
    // Signature without seal: organ right-indented two characters; the date one line lower,
    // starting two characters right of the organ — or, when longer, right-indented two with
    // the organ moved left to keep the two-character step (GB/T 9704 7.3.5.2).
    let sig = ts.units(Face::Body, size, cell, &ts.style.signature);
    let date = ts.units(Face::Body, size, cell, &letter.date);
    let right = g.right() - 2.0 * cell;
    let mut sig_x = right - width(&sig);
    let mut date_x = sig_x + 2.0 * cell;
    if date_x + width(&date) > right + 0.01 {
        date_x = right - width(&date);
        sig_x = date_x - 2.0 * cell;
    }
    let run = |x: f32, units: Vec<Unit>| {
        Row::Text(vec![Run {
            face: Face::Body,
            size,
            x,
            units,
            extra: 0.0,
            red: false,
        }])
    };
    Flow {
        rows,
        signature: [run(sig_x, sig), run(date_x, date)],
    }
}

/// Rows per page. The first page's flow starts at `first`; a page never starts with a blank;
/// the signature block keeps at least two lines of the body with it.
fn paginate(f: Flow, first: usize, lines: usize) -> Vec<Vec<(usize, Row)>> {
    let mut pages: Vec<Vec<(usize, Row)>> = vec![Vec::new()];
    let mut row = first;
    for r in f.rows {
        if row >= lines {
            pages.push(Vec::new());
            row = 0;
        }
        if row == 0 && matches!(r, Row::Blank) && pages.len() > 1 {
            continue;
        }
        pages.last_mut().expect("a page").push((row, r));
        row += 1;
    }
    let [sig, date] = f.signature;
    if row + 3 <= lines {
        let last = pages.last_mut().expect("a page");
        last.push((row + 1, sig));
        last.push((row + 2, date));
    } else if row + 2 <= lines {
        // No room for the blank line: the spacing gives, the signature stays with the body.
        let last = pages.last_mut().expect("a page");
        last.push((row, sig));
        last.push((row + 1, date));
    } else {
        // Never a page of signature alone: the last two lines of the body go over with it.
        let last = pages.last_mut().expect("a page");
        let mut moved = Vec::new();
        for _ in 0..2 {
            if last.len() > 1 {
                moved.push(last.pop().expect("checked").1);
            }
        }
        moved.reverse();
        let mut page: Vec<(usize, Row)> = moved.into_iter().enumerate().collect();
        let n = page.len();
        page.push((n + 1, sig));
        page.push((n + 2, date));
        pages.push(page);
    }
    pages
}

pub(super) fn letter(
    ts: &Typesetter,
    letter: &Letter,
    blocks: &[Block],
) -> Result<Pdf, LetterError> {
    let g = Grid::new(ts);
    // The head of the letter format (GB/T 9704 10.1): the mark's top edge 30 mm from the top
    // of the page, the double rule 4 mm under it, the flow from the first grid line below.
    let mark_units_len = ts.style.organ_mark.chars().count().max(1) as f32;
    let mark_size = 30.0_f32.min(150.0 * MM / mark_units_len);
    let mark_top = 30.0 * MM;
    let mark_baseline = mark_top + (1.0 - 0.12) * mark_size;
    let rule_top = mark_top + mark_size + 4.0 * MM;
    let (thick, gap, thin) = (0.7 * MM, 0.5 * MM, 0.25 * MM);
    let rule_bottom = rule_top + thick + gap + thin;
    let first = (0..g.lines)
        .find(|&i| g.top + i as f32 * g.pitch >= rule_bottom + 1.0 * MM)
        .unwrap_or(1);

    let pages = paginate(flow(ts, letter, blocks, &g), first, g.lines);
    let mut doc = document(&letter.title);
    let npages = pages.len();
    for (p, rows) in pages.into_iter().enumerate() {
        let mut page =
            doc.start_page_with(PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4 is a valid size"));
        let mut s = page.surface();
        if p == 0 {
            let mark = ts.units(Face::Title, mark_size, mark_size, &ts.style.organ_mark);
            let w = width(&mark);
            draw_run(
                ts,
                &mut s,
                &Run {
                    face: Face::Title,
                    size: mark_size,
                    x: (PAGE_W - w) / 2.0,
                    units: mark,
                    extra: 0.0,
                    red: true,
                },
                mark_baseline,
            );
            let (x, w) = ((PAGE_W - 170.0 * MM) / 2.0, 170.0 * MM);
            rect(&mut s, x, rule_top, w, thick, RED);
            rect(&mut s, x, rule_top + thick + gap, w, thin, RED);
            // The closing double rule, 20 mm above the bottom edge: thin over thick.
            let bottom = PAGE_H - 20.0 * MM;
            rect(&mut s, x, bottom - thick - gap - thin, w, thin, RED);
            rect(&mut s, x, bottom - thick, w, thick, RED);
        } else {
            // `— 2 —`, 4号, 7 mm under the text block; odd pages right, even pages left.
            let size = 14.0;
            let num = ts.units(Face::Body, size, size, &format!("— {} —", p + 1));
            let w = width(&num);
            let x = if (p + 1) % 2 == 1 {
                g.right() - g.cell - w
            } else {
                g.left + g.cell
            };
            let baseline = g.top + g.height + 7.0 * MM + (0.5 + EM_MIDDLE) * size;
            draw_run(
                ts,
                &mut s,
                &Run {
                    face: Face::Body,
                    size,
                    x,
                    units: num,
                    extra: 0.0,
                    red: false,
                },
                baseline,
            );
        }
        for (i, row) in rows {
            if let Row::Text(runs) = row {
                for run in runs {
                    draw_run(ts, &mut s, &run, g.baseline(i));
                }
            }
        }
        s.finish();
        page.finish();
    }
    finish(doc, npages)
}

/// Envelopes for the print room, three to a page: the six postcode boxes, the address, the
/// name with 收; a recipient without a postal address is marked for hand delivery instead.
pub(super) fn address_sheet(
    ts: &Typesetter,
    title: &str,
    envelopes: &[Envelope],
) -> Result<Pdf, LetterError> {
    let mut doc = document(title);
    let per_page = 3;
    let chunks: Vec<&[Envelope]> = envelopes.chunks(per_page).collect();
    let npages = chunks.len().max(1);
    let text = |s: &mut Surface, face: Face, size: f32, x: f32, baseline: f32, t: &str, red| {
        let units = ts.units(face, size, size, t);
        draw_run(
            ts,
            s,
            &Run {
                face,
                size,
                x,
                units,
                extra: 0.0,
                red,
            },
            baseline,
        );
    };
    let measure = |face: Face, size: f32, t: &str| width(&ts.units(face, size, size, t));
    for (p, chunk) in chunks.iter().enumerate() {
        let mut page =
            doc.start_page_with(PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4 is a valid size"));
        let mut s = page.surface();
        text(
            &mut s,
            Face::Body,
            10.0,
            15.0 * MM,
            10.0 * MM,
            &format!("{title}　第{}页／共{}页", p + 1, npages),
            false,
        );
        for (k, e) in chunk.iter().enumerate() {
            let (x, y, w, h) = (
                15.0 * MM,
                (15.0 + k as f32 * 92.0) * MM,
                180.0 * MM,
                85.0 * MM,
            );
            frame(&mut s, x, y, w, h, (128, 128, 128), 0.5);
            text(
                &mut s,
                Face::Body,
                9.0,
                x + 100.0 * MM,
                y + 6.0 * MM,
                &e.tag,
                false,
            );
            match &e.postcode {
                Some(code) => {
                    // Six red boxes, top left, one digit each (GB/T 1416).
                    for (i, d) in code
                        .chars()
                        .chain(std::iter::repeat(' '))
                        .take(6)
                        .enumerate()
                    {
                        let bx = x + 8.0 * MM + i as f32 * 10.0 * MM;
                        let by = y + 9.0 * MM;
                        frame(&mut s, bx, by, 8.0 * MM, 10.0 * MM, RED, 1.0);
                        if d != ' ' {
                            let dw = measure(Face::Body, 16.0, &d.to_string());
                            text(
                                &mut s,
                                Face::Body,
                                16.0,
                                bx + (8.0 * MM - dw) / 2.0,
                                by + 7.5 * MM,
                                &d.to_string(),
                                false,
                            );
                        }
                    }
                    for (i, line) in e.address.iter().enumerate() {
                        text(
                            &mut s,
                            Face::Body,
                            15.0,
                            x + 12.0 * MM,
                            y + (29.0 + i as f32 * 8.0) * MM,
                            line,
                            false,
                        );
                    }
                }
                None => {
                    text(
                        &mut s,
                        Face::Heading,
                        18.0,
                        x + 8.0 * MM,
                        y + 18.0 * MM,
                        "专人送达（无邮寄地址）",
                        true,
                    );
                }
            }
            let name = format!("{}　收", e.name);
            let nw = measure(Face::Title, 22.0, &name);
            text(
                &mut s,
                Face::Title,
                22.0,
                x + (w - nw) / 2.0,
                y + 58.0 * MM,
                &name,
                false,
            );
            let mut sender = ts.style.signature.clone();
            if let Some(a) = &ts.style.sender_address {
                sender = format!("{a}　{sender}");
            }
            let sw = measure(Face::Body, 11.0, &sender);
            text(
                &mut s,
                Face::Body,
                11.0,
                x + w - 8.0 * MM - sw,
                y + 72.0 * MM,
                &sender,
                false,
            );
            if let Some(pc) = &ts.style.sender_postcode {
                let t = format!("邮政编码：{pc}");
                let tw = measure(Face::Body, 11.0, &t);
                text(
                    &mut s,
                    Face::Body,
                    11.0,
                    x + w - 8.0 * MM - tw,
                    y + 79.0 * MM,
                    &t,
                    false,
                );
            }
        }
        s.finish();
        page.finish();
    }
    finish(doc, npages)
}
