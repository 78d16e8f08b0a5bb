//! Chinese line breaking on the character grid of GB/T 9704 (28 characters a line at 3号).
//!
//! The text is cut into *units*: one full-width character (a Han character, a full-width mark)
//! takes one cell of the grid; a run of half-width letters and digits (`2026`, `JD-2026-007`,
//! `12380`) is one unbreakable unit as wide as the font makes it, so a number or a case number
//! is never split over two lines.
//!
//! The rules are the usual Chinese ones (禁则, as in GB/T 15834 and every office suite):
//! - no line starts with a closing mark, a pause or a stop (`，。、；：？！）》」』”’〕】…—`);
//! - no line ends with an opening mark (`（《「『“‘〔【`).
//!
//! A closing mark that would start a line is hung in the right margin of the line before, as
//! office suites do by default ("允许标点溢出边界"), so the lines keep their 28 cells; when
//! more than one would have to hang (`。”`), the last character of the line moves down with
//! them instead and the shorter line is spread to the full width.

/// May not start a line.
pub fn no_start(c: char) -> bool {
    matches!(
        c,
        '，' | '。'
            | '、'
            | '；'
            | '：'
            | '？'
            | '！'
            | '）'
            | '》'
            | '」'
            | '』'
            | '”'
            | '’'
            | '〕'
            | '】'
            | '〉'
            | '…'
            | '—'
            | '·'
            | '％'
            | ','
            | '.'
            | ';'
            | ':'
            | '?'
            | '!'
            | ')'
            | ']'
            | '%'
    )
}

/// May not end a line.
pub fn no_end(c: char) -> bool {
    matches!(
        c,
        '（' | '《' | '「' | '『' | '“' | '‘' | '〔' | '【' | '〈' | '(' | '['
    )
}

/// Characters set one to a cell. Everything from U+2E80 up (CJK, full-width forms) and the
/// general punctuation Chinese text uses (`“”‘’…—`).
pub fn full_width(c: char) -> bool {
    let u = c as u32;
    u >= 0x2E80 || matches!(c, '“' | '”' | '‘' | '’' | '…' | '—' | '·' | '　')
}

/// One piece of a line: the text and its width in points.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub text: String,
    pub width: f32,
    /// May be hung in the right margin (a single closing mark).
    pub hangs: bool,
}

/// A broken line: its units, and whether it is to be spread to the full width (every line of a
/// paragraph but its last).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub units: Vec<Unit>,
    pub justify: bool,
}

impl Line {
    pub fn text(&self) -> String {
        self.units.iter().map(|u| u.text.as_str()).collect()
    }

    /// Width without a hung mark at the end.
    pub fn width(&self, measure: f32) -> f32 {
        let w: f32 = self.units.iter().map(|u| u.width).sum();
        match self.units.last() {
            Some(last) if last.hangs && w > measure + 0.01 => w - last.width,
            _ => w,
        }
    }
}

/// Cut `text` into units. `cell` is the grid pitch; `half` measures a run of half-width text.
pub fn units(text: &str, cell: f32, half: &dyn Fn(&str) -> f32) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<Unit>| {
        if !run.is_empty() {
            let text = std::mem::take(run);
            out.push(Unit {
                width: half(&text),
                hangs: false,
                text,
            });
        }
    };
    for c in text.chars() {
        if c == '\n' || c == '\r' || c == '\t' {
            continue;
        }
        if full_width(c) {
            flush(&mut run, &mut out);
            out.push(Unit {
                text: c.to_string(),
                width: cell,
                hangs: no_start(c),
            });
        } else if c == ' ' {
            // A space ends a half-width word and may be a break; it keeps its width.
            run.push(c);
            flush(&mut run, &mut out);
        } else {
            // A half-width mark after a word stays with the word (`2026,` never splits).
            run.push(c);
        }
    }
    flush(&mut run, &mut out);
    // A half-width unit that is only a closing mark behaves like one.
    for u in &mut out {
        if u.text.chars().count() == 1 && u.text.chars().all(no_start) && !u.hangs {
            u.hangs = true;
        }
    }
    out
}

fn starts_forbidden(u: &Unit) -> bool {
    u.text.chars().next().is_some_and(no_start)
}

fn ends_forbidden(u: &Unit) -> bool {
    u.text.chars().last().is_some_and(no_end)
}

/// Break units into lines of at most `measure` points; the first line is `indent` narrower.
/// Never leaves a line starting with a closing mark or ending with an opening one, unless a
/// single unit is wider than the line (then it stands alone).
pub fn break_lines(units: &[Unit], measure: f32, indent: f32) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    let mut i = 0;
    let eps = 0.01;
    while i < units.len() {
        let avail = if lines.is_empty() {
            measure - indent
        } else {
            measure
        };
        // Greedy fill.
        let mut w = 0.0;
        let mut j = i;
        while j < units.len() && w + units[j].width <= avail + eps {
            w += units[j].width;
            j += 1;
        }
        if j == i {
            j = i + 1; // a unit wider than the line stands alone
        } else if j < units.len() {
            if starts_forbidden(&units[j])
                && units[j].hangs
                && !units.get(j + 1).is_some_and(starts_forbidden)
            {
                // Hang one closing mark in the margin.
                j += 1;
            } else {
                // Move characters down until the next line starts well and this one ends well.
                let mut k = j;
                while k > i + 1 && (starts_forbidden(&units[k]) || ends_forbidden(&units[k - 1])) {
                    k -= 1;
                }
                j = k;
            }
        }
        lines.push(Line {
            units: units[i..j].to_vec(),
            justify: j < units.len(),
        });
        i = j;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const CELL: f32 = 10.0;

    fn half(s: &str) -> f32 {
        s.chars().count() as f32 * 5.0
    }

    fn lines(text: &str, cells: usize, indent: usize) -> Vec<String> {
        let u = units(text, CELL, &half);
        break_lines(&u, cells as f32 * CELL, indent as f32 * CELL)
            .iter()
            .map(Line::text)
            .collect()
    }

    #[test]
    fn a_full_line_holds_exactly_the_grid() {
        let text = "字".repeat(28 * 3);
        let l = lines(&text, 28, 0);
        assert_eq!(l.len(), 3);
        assert!(l.iter().all(|l| l.chars().count() == 28), "{l:?}");
        // The first line of a paragraph is two cells short (the indent).
        let l = lines(&text, 28, 2);
        assert_eq!(l[0].chars().count(), 26);
        assert_eq!(l[1].chars().count(), 28);
    }

    #[test]
    fn no_line_starts_with_a_closing_mark() {
        // The 29th character is a full stop: it hangs on the first line.
        let text = format!("{}。{}", "字".repeat(28), "字".repeat(10));
        let l = lines(&text, 28, 0);
        assert_eq!(l[0], format!("{}。", "字".repeat(28)));
        assert!(l[1].starts_with('字'));
        // Two closing marks cannot both hang: the last character goes down with them.
        let text = format!("{}。”{}", "字".repeat(28), "字".repeat(10));
        let l = lines(&text, 28, 0);
        assert_eq!(l[0], "字".repeat(27));
        assert!(l[1].starts_with("字。”"), "{l:?}");
        for text in [
            "关于反映你的有关问题，县委组织部已按照干部选拔任用监督的有关规定进行了调查核实。现将你被反映问题的调查结果告知如下：",
            "一二三四五六七八九十一二三四五六七八九十一二三四五六七，。、；好的",
            "经调查，所反映的违规推荐问题不属实；推荐程序符合《党政领导干部选拔任用工作条例》规定。",
        ] {
            for cells in 5..=28 {
                for l in lines(text, cells, 2) {
                    let first = l.chars().next().unwrap();
                    assert!(!no_start(first), "{cells}: {l:?}");
                    let last = l.chars().last().unwrap();
                    assert!(!no_end(last), "{cells}: {l:?}");
                }
            }
        }
    }

    #[test]
    fn no_line_ends_with_an_opening_mark() {
        let text = format!("{}《条例》", "字".repeat(27));
        let l = lines(&text, 28, 0);
        assert_eq!(l[0], "字".repeat(27));
        assert_eq!(l[1], "《条例》");
    }

    #[test]
    fn numbers_and_case_numbers_are_not_split() {
        let text = format!("{}JD-2026-007号", "字".repeat(25));
        let l = lines(&text, 28, 0);
        assert_eq!(l[0], "字".repeat(25));
        assert_eq!(l[1], "JD-2026-007号");
        let text = "举报电话：0000-12380。";
        assert_eq!(lines(text, 28, 0), [text]);
    }

    #[test]
    fn every_character_is_kept_in_order() {
        let text = "（一）2026年6月，某镇在干部选拔中存在“违规推荐”问题……经查不属实。Case 7, ok.";
        for cells in 3..=28 {
            let joined: String = lines(text, cells, 2).concat();
            assert_eq!(joined, text, "{cells}");
        }
    }
}
