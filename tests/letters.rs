//! Letters as PDF (GB/T 9704), read back with poppler's tools: the Chinese text and the order of
//! the parts, the grid and the line breaking, page numbers, the fonts embedded as subsets, the
//! size; the batch directory for the print room (letters, address sheet, manifest); the status
//! query after a crash; and flow 3 of SPEC §1 end to end through `disclose dispatch`.
//!
//! Needs poppler-utils and fonts-noto-cjk (`.ci/run` installs both); a missing tool fails with
//! the command that installs it. The first page of a letter is rendered to PNG under
//! `target/tmp/letters/` for a person to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::DateTime;
use common::{Scratch, repo, stdout, write};
use disclose::channels::letter::{PdfLetters, PdfLettersConfig};
use disclose::channels::{Batch, Channel, Item, Outcome};
use disclose::job::{ChannelKind, Job};
use disclose::letter::linebreak::{no_end, no_start};
use disclose::render::{RecipientView, Rendered, Templates};

/// Run a poppler tool; a missing tool is a failure that says how to install it.
fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!(
            "{name} cannot be run ({e}): install poppler-utils (apt-get install poppler-utils; .ci/run does this)"
        )
    });
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 from poppler")
}

fn text(pdf: &Path) -> String {
    tool("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"])
}

fn pages(pdf: &Path) -> usize {
    let info = tool("pdfinfo", &[pdf.to_str().unwrap()]);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("pdfinfo shows the page count")
}

fn example_job() -> Job {
    let text =
        std::fs::read_to_string(repo().join("examples/jobs/03-investigation-result-letters.json"))
            .unwrap();
    disclose::job::parse(text.as_bytes()).unwrap().job
}

fn channel(dir: &Path, extra: &str) -> PdfLetters {
    let cfg: PdfLettersConfig = toml::from_str(&format!(
        "dir = \"{}\"\nsender_address = \"示例县政府路8号\"\nsender_postcode = \"100000\"\n{extra}",
        dir.display()
    ))
    .unwrap();
    assert!(cfg.validate(ChannelKind::Letter).is_empty());
    PdfLetters::open(&cfg, dir).unwrap_or_else(|e| {
        panic!("{e}\n(the default fonts: apt-get install fonts-noto-cjk; .ci/run does this)")
    })
}

fn item(
    id: i64,
    recipient: &str,
    name: &str,
    role: &str,
    address: Option<&str>,
    html: String,
) -> Item {
    Item {
        delivery_id: id,
        recipient: recipient.into(),
        name: name.into(),
        role: role.into(),
        address: address.map(String::from),
        attempt: 1,
        content: Arc::new(Rendered::Letter { html }),
    }
}

fn rendered(job: &Job, id: &str, name: &str, role: &str) -> String {
    let t = Templates::load(&repo().join("templates")).unwrap();
    let who = RecipientView {
        id: id.into(),
        name: name.into(),
        role: role.into(),
    };
    match t.render(job, ChannelKind::Letter, Some(&who)).unwrap() {
        Rendered::Letter { html } => html,
        other => panic!("{other:?}"),
    }
}

fn batch(job: Job, items: Vec<Item>) -> Batch {
    Batch {
        job: Arc::new(job),
        channel: ChannelKind::Letter,
        items,
        now: DateTime::parse_from_rfc3339("2026-11-26T10:00:00+08:00").unwrap(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn delivered(o: &Outcome) -> String {
    match o {
        Outcome::Delivered { reference: Some(r) } => r.clone(),
        other => panic!("not delivered: {other:?}"),
    }
}

/// A place a person can find the rendered page after the run.
fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("letters");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_letter_reads_back_in_the_order_of_the_standard_with_fonts_embedded() {
    let s = Scratch::new("letter-one");
    let ch = channel(&s.path("letters"), "");
    let job = example_job();
    let html = rendered(&job, "r-0001", "王五", "reported");
    let address = r#"{"postcode":"100000","lines":["某县某镇人民政府","镇长办公室"]}"#;
    let b = batch(
        job,
        vec![item(41, "r-0001", "王五", "reported", Some(address), html)],
    );
    let out = runtime().block_on(ch.deliver(&b));
    let reference = delivered(&out[0]);
    assert_eq!(reference, "batch-000041/000041-r-0001.pdf");
    let pdf = s.path("letters/zzb-2026-0155").join(&reference);

    let t = text(&pdf);
    // The parts, in the order of GB/T 9704 10.1.
    let parts = [
        "中共示例县委组织部",             // the organ's mark
        "组干函〔2026〕16号",             // reference number: the approval's serial
        "关于信访举报问题调查结果的告知", // title
        "王五同志：",                     // addressee
        "关于反映你的有关问题",           // body
        "一、调查核实情况",
        "二、调查结论",
        "特此告知。",
        "中共示例县委组织部", // signature
        "2026年11月25日",     // date of approval, the standard's way
    ];
    let mut at = 0;
    for p in parts {
        let found = t[at..]
            .find(p)
            .unwrap_or_else(|| panic!("{p:?} missing or out of order in:\n{t}"));
        at += found + p.len();
    }
    assert!(
        !t.contains("署名反映"),
        "the reported person's wording only:\n{t}"
    );
    assert_eq!(pages(&pdf), 1);
    assert!(!t.contains("— 1 —"), "the first page shows no page number");

    // Fonts embedded, as subsets (name prefix ABCDEF+), as CID fonts.
    let fonts = tool("pdffonts", &[pdf.to_str().unwrap()]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(rows.len() >= 2, "{fonts}");
    for row in &rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type [type2] encoding emb sub uni object ID
        let n = cols.len();
        assert_eq!(
            &cols[n - 5..n - 2],
            ["yes", "yes", "yes"],
            "embedded, subset, unicode: {fonts}"
        );
        assert!(
            cols[0].len() > 7 && cols[0].as_bytes()[6] == b'+',
            "{fonts}"
        );
        assert!(row.contains("CID"), "{fonts}");
    }
    assert!(fonts.contains("NotoSerifCJK"), "{fonts}");
    let size = std::fs::metadata(&pdf).unwrap().len();
    assert!(size < 100 * 1024, "a one-page letter is {size} bytes");

    // The first page as a picture, for a person to look at.
    let png = artifact("investigation-letter");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            pdf.to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    );
    let png = png.with_extension("png");
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "{}",
        png.display()
    );
}

#[test]
fn a_long_letter_keeps_the_grid_breaks_lines_the_chinese_way_and_numbers_its_pages() {
    let s = Scratch::new("letter-long");
    let ch = channel(&s.path("letters"), "");
    let job = example_job();
    // Paragraphs of Han characters with marks in every position of the line.
    let sentence = "经调查核实，所反映的问题不属实。推荐程序符合《党政领导干部选拔任用工作条例》规定，“民主推荐”环节规范；";
    let mut html = String::from("<h2>一、基本情况</h2>\n");
    for i in 0..14 {
        html.push_str(&format!("<p>{}</p>\n", sentence.repeat(2 + i % 3)));
        if i % 5 == 2 {
            html.push_str("<h3>（一）有关情况</h3>\n<h4>1.具体情况</h4>\n<h5>（1）细节</h5>\n");
        }
    }
    html.push_str("<p>特此函告。</p>\n");
    let b = batch(job, vec![item(7, "m-1", "李四", "member", None, html)]);
    let out = runtime().block_on(ch.deliver(&b));
    let pdf = s.path("letters/zzb-2026-0155").join(delivered(&out[0]));
    let n = pages(&pdf);
    assert!(n >= 3, "{n} pages");
    let t = text(&pdf);
    let page_texts: Vec<&str> = t.split('\u{c}').collect();
    // Page numbers from the second page: `— 2 —` …; none on the first.
    assert!(!page_texts[0].contains("— 1 —"));
    for p in 2..=n {
        let squeezed: String = page_texts[p - 1].split_whitespace().collect();
        assert!(
            squeezed.contains(&format!("—{p}—")),
            "page {p}:\n{}",
            page_texts[p - 1]
        );
    }
    // A full page of body text holds the 22 lines of the grid, each line at most 28 cells.
    let body_lines = |page: &str| -> Vec<String> {
        page.lines()
            .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect::<String>())
            .filter(|l| !l.is_empty() && !l.starts_with('—'))
            .collect()
    };
    let second = body_lines(page_texts[1]);
    assert_eq!(second.len(), 22, "{second:#?}");
    let mut full = 0;
    for l in second.iter() {
        let cells = l.chars().count();
        // 28 cells, or 29 with a closing mark hung in the margin.
        assert!(cells <= 29, "{cells}: {l}");
        if cells == 28 && !l.starts_with('（') {
            full += 1;
        }
    }
    assert!(full >= 10, "most lines fill the 28 cells: {second:#?}");
    // No line starts with a closing mark or ends with an opening one, on any page.
    for page in &page_texts {
        for l in body_lines(page) {
            let first = l.chars().next().unwrap();
            let last = l.chars().last().unwrap();
            assert!(!no_start(first), "a line starts with {first}: {l}");
            assert!(!no_end(last), "a line ends with {last}: {l}");
        }
    }
    // The signature and date close the last page, with body text above them.
    let last = body_lines(page_texts[n - 1]);
    assert!(last.len() >= 4, "{last:#?}");
    assert_eq!(last[last.len() - 2], "中共示例县委组织部");
    assert_eq!(last[last.len() - 1], "2026年11月25日");
    let png = artifact("long-letter-page-2");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            "-f",
            "2",
            "-l",
            "2",
            "-singlefile",
            pdf.to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    );
}

#[test]
fn a_batch_is_a_directory_of_letters_an_address_sheet_and_a_manifest() {
    let s = Scratch::new("letter-batch");
    let ch = channel(&s.path("letters"), "");
    let job = example_job();
    let items = vec![
        item(
            1,
            "r-0001",
            "王五",
            "reported",
            Some(r#"{"postcode":"100000","lines":["某县某镇人民政府","镇长办公室"]}"#),
            rendered(&job, "r-0001", "王五", "reported"),
        ),
        item(
            2,
            "c-0001",
            "赵六",
            "complainant",
            Some(r#"{"postcode":"100001","lines":["某县城关镇幸福路12号"]}"#),
            rendered(&job, "c-0001", "赵六", "complainant"),
        ),
        // No postal address: delivered by hand.
        item(
            3,
            "c/0002",
            "钱七",
            "complainant",
            None,
            rendered(&job, "c-0002", "钱七", "complainant"),
        ),
    ];
    let out = runtime().block_on(ch.deliver(&batch(job.clone(), items.clone())));
    let refs: Vec<String> = out.iter().map(delivered).collect();
    assert_eq!(
        refs,
        [
            "batch-000001/000001-r-0001.pdf",
            "batch-000001/000002-c-0001.pdf",
            "batch-000001/000003-c_0002.pdf"
        ]
    );
    let dir = s.path("letters/zzb-2026-0155/batch-000001");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "000001-r-0001.pdf",
            "000002-c-0001.pdf",
            "000003-c_0002.pdf",
            "addresses.pdf",
            "manifest.csv"
        ]
    );
    // Nothing half-written is left beside it.
    let job_dir: Vec<_> = std::fs::read_dir(s.path("letters/zzb-2026-0155"))
        .unwrap()
        .collect();
    assert_eq!(job_dir.len(), 1);

    // Each letter speaks to its reader.
    assert!(text(&dir.join("000002-c-0001.pdf")).contains("赵六同志："));
    assert!(text(&dir.join("000002-c-0001.pdf")).contains("你署名反映的有关问题"));

    // The envelopes: postcodes in their boxes, addresses, names; the hand delivery marked.
    let sheet = text(&dir.join("addresses.pdf"));
    for want in [
        "某县某镇人民政府",
        "镇长办公室",
        "王五",
        "某县城关镇幸福路12号",
        "赵六",
        "钱七",
        "专人送达",
        "示例县政府路8号",
        "邮政编码：100000",
    ] {
        assert!(sheet.contains(want), "{want:?} missing:\n{sheet}");
    }
    let squeezed: Vec<String> = sheet
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        squeezed.iter().any(|l| l == "100001"),
        "postcode 100001 in its boxes:\n{sheet}"
    );
    let hand = sheet.find("钱七").unwrap();
    assert!(
        sheet[..hand]
            .rfind("专人送达")
            .is_some_and(|i| i > sheet.find("赵六").unwrap()),
        "{sheet}"
    );

    let png = artifact("address-sheet");
    tool(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "60",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            dir.join("addresses.pdf").to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    );

    // The manifest: one row per letter, the print room's facts, the file's hash.
    let mut rows = csv::Reader::from_path(dir.join("manifest.csv")).unwrap();
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][col("reference_number")], "组干函〔2026〕16号");
    assert_eq!(&rows[0][col("delivery")], "post");
    assert_eq!(&rows[0][col("postcode")], "100000");
    assert_eq!(&rows[0][col("address")], "某县某镇人民政府 镇长办公室");
    assert_eq!(&rows[2][col("delivery")], "hand");
    assert_eq!(&rows[2][col("pages")], "1");
    for r in &rows {
        use sha2::Digest;
        let bytes = std::fs::read(dir.join(&r[col("file")])).unwrap();
        assert_eq!(r[col("bytes")].parse::<usize>().unwrap(), bytes.len());
        assert_eq!(
            &r[col("sha256")],
            disclose::channels::http::hex(&sha2::Sha256::digest(&bytes))
        );
    }

    // The status query: what is written is delivered (same reference), what is not, not sent.
    let mut asked = items.clone();
    asked.push(item(9, "x-9", "孙八", "member", None, String::new()));
    let resolved = runtime().block_on(ch.resolve(&batch(job, asked)));
    assert_eq!(
        resolved[..3].iter().map(delivered).collect::<Vec<_>>(),
        refs
    );
    assert!(
        matches!(&resolved[3], Outcome::Failed { code, permanent: false, .. } if code == "not_sent"),
        "{resolved:?}"
    );
}

#[test]
fn bad_configuration_is_reported_in_full_and_missing_fonts_are_named() {
    let cfg: PdfLettersConfig = toml::from_str(
        "organ_mark = \" \"\nreference_prefix = \"组干函〔\"\nsender_postcode = \"10000\"\n[page]\nchars_per_line = 5\n",
    )
    .unwrap();
    let problems = cfg.validate(ChannelKind::Email);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("letter channel, not email"))
    );
    assert!(problems.iter().any(|p| p.contains("\"10000\"")));
    let e = toml::from_str::<PdfLettersConfig>("organ = \"x\"\n").unwrap_err();
    assert!(e.to_string().contains("organ"), "{e}");
    let cfg: PdfLettersConfig =
        toml::from_str("[fonts]\nbody = { path = \"/nonexistent/FangSong.ttf\" }\n").unwrap();
    let s = Scratch::new("letter-font");
    let e = PdfLetters::open(&cfg, &s.0)
        .err()
        .expect("a missing font fails start-up");
    assert!(
        e.contains("/nonexistent/FangSong.ttf") && e.contains("body"),
        "{e}"
    );
}

/// SPEC §1 flow 3: the investigation result goes as letters to the reported person and the
/// signed complainant, through `disclose dispatch`, once.
#[test]
fn flow_3_dispatch_writes_the_letters_for_the_print_room_once() {
    let s = Scratch::new("letter-flow");
    let channels = common::daytime_channels(&s);
    let letters = s.path("print-room");
    write(
        &channels.join("letter.toml"),
        &format!(
            "channel = \"letter\"\nbatch_size = 50\n[transport]\ntype = \"pdf_letters\"\ndir = \"{}\"\nsender_postcode = \"100000\"\n",
            letters.display()
        ),
    );
    let run = || {
        s.command(&[
            "dispatch",
            "--directory",
            "examples/directory",
            "examples/jobs/03-investigation-result-letters.json",
        ])
        .env("DISCLOSE_PATHS_CHANNELS_DIR", &channels)
        .output()
        .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout(&out),
        common::stderr(&out)
    );
    let job_dir = letters.join("zzb-2026-0155");
    let batches: Vec<PathBuf> = std::fs::read_dir(&job_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(batches.len(), 1, "{batches:?}");
    let pdfs: Vec<PathBuf> = std::fs::read_dir(&batches[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with('0'))
        .collect();
    assert_eq!(pdfs.len(), 2);
    let texts: Vec<String> = pdfs.iter().map(|p| text(p)).collect();
    let reported = texts
        .iter()
        .find(|t| t.contains("王五同志："))
        .expect("the reported person's letter");
    let complainant = texts
        .iter()
        .find(|t| t.contains("赵六同志："))
        .expect("the complainant's letter");
    assert!(
        reported.contains("现将你被反映问题的调查结果告知如下"),
        "{reported}"
    );
    assert!(
        complainant.contains("你署名反映的有关问题") && complainant.contains("特此函复。"),
        "{complainant}"
    );
    for t in &texts {
        assert!(
            t.contains("组干函〔2026〕16号") && t.contains("不属实"),
            "{t}"
        );
    }
    let manifest = std::fs::read_to_string(batches[0].join("manifest.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 3, "{manifest}");
    // The ledger holds each letter's file as its reference.
    let conn = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let mut st = conn
        .prepare("SELECT state, code FROM deliveries WHERE job_id = 'zzb-2026-0155' AND channel = 'letter' ORDER BY id")
        .unwrap();
    let rows: Vec<(String, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for (state, code) in &rows {
        assert_eq!(state, "delivered");
        assert!(
            code.as_deref()
                .is_some_and(|c| c.starts_with("batch-") && c.ends_with(".pdf")),
            "{code:?}"
        );
    }
    // Dispatched again: a duplicate, nothing printed twice.
    let again = run();
    assert!(stdout(&again).contains("duplicate"), "{}", stdout(&again));
    assert_eq!(std::fs::read_dir(&job_dir).unwrap().count(), 1);
}
