//! Lays out 1,000 one-page letters (the shipped investigation-result template, each with its
//! own recipient) and prints letters per second and bytes per letter. Run by hand, in release:
//!
//! ```text
//! cargo run --release --example bench_letters [N] [THREADS]
//! cargo run --release --example bench_letters N channel
//! ```
//!
//! Fonts: the defaults (Debian's fonts-noto-cjk). The first form writes nothing to disk: it
//! measures the typesetting and PDF writing alone, on THREADS threads. The second sends the
//! letters through the letter channel itself in batches of 50, as the engine does: layout on
//! every core, then each batch's directory (letters, address sheet, manifest) written, synced
//! and renamed into a temporary directory, removed at the end.

use std::path::Path;
use std::time::Instant;

use disclose::job::ChannelKind;
use disclose::letter::{self, FontSet, Letter, Style, Typesetter};
use disclose::render::{RecipientView, Rendered, Templates};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let third = args.next();
    let through_channel = third.as_deref() == Some("channel");
    let threads: usize = third
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("examples/jobs/03-investigation-result-letters.json"))
            .expect("the example job");
    let job = disclose::job::parse(text.as_bytes())
        .expect("the example job parses")
        .job;
    let templates = Templates::load(&root.join("templates")).expect("templates");
    let t0 = Instant::now();
    let ts = Typesetter::new(&FontSet::default(), Style::default())
        .expect("the default fonts (apt-get install fonts-noto-cjk)");
    println!(
        "fonts loaded in {:.0} ms: {:?}",
        t0.elapsed().as_secs_f64() * 1e3,
        ts.font_names()
    );
    let reference = letter::document_number(&job, "组干函");
    let date = letter::chinese_date(job.approval.approved_at);
    // The letters, rendered first (the engine renders them before the channel sees them).
    let letters: Vec<Letter> = (0..n)
        .map(|i| {
            let who = RecipientView {
                id: format!("r-{i:04}"),
                name: format!("王{}", ["五", "建国", "秀英", "小明"][i % 4]),
                role: if i % 2 == 0 {
                    "reported"
                } else {
                    "complainant"
                }
                .into(),
            };
            let Rendered::Letter { html } = templates
                .render(&job, ChannelKind::Letter, Some(&who))
                .expect("renders")
            else {
                unreachable!()
            };
            Letter {
                reference: reference.clone(),
                title: job.title.clone(),
                addressee: format!("{}同志", who.name),
                body_html: html,
                date: date.clone(),
            }
        })
        .collect();
    if through_channel {
        return channel(&job, letters);
    }
    let t = Instant::now();
    let chunk = n.div_ceil(threads.max(1));
    let results: Vec<(usize, usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = letters
            .chunks(chunk.max(1))
            .map(|part| {
                let ts = &ts;
                s.spawn(move || {
                    let (mut bytes, mut pages, mut max) = (0, 0, 0);
                    for l in part {
                        let pdf = ts.letter(l).expect("lays out");
                        bytes += pdf.bytes.len();
                        pages += pdf.pages;
                        max = max.max(pdf.bytes.len());
                    }
                    (bytes, pages, max)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let bytes: usize = results.iter().map(|r| r.0).sum();
    let pages: usize = results.iter().map(|r| r.1).sum();
    let max = results.iter().map(|r| r.2).max().unwrap_or(0);
    println!(
        "{n} letters ({pages} pages) on {threads} thread(s) in {secs:.2} s: {:.0} letters/s; {:.1} KB per letter on average, {:.1} KB at most",
        n as f64 / secs,
        bytes as f64 / n as f64 / 1024.0,
        max as f64 / 1024.0
    );
}

/// The letters through the `pdf_letters` channel, 50 to a batch.
fn channel(job: &disclose::job::Job, letters: Vec<Letter>) {
    use disclose::channels::letter::{PdfLetters, PdfLettersConfig};
    use disclose::channels::{Batch, Channel, Item};
    use std::sync::Arc;
    let n = letters.len();
    let dir = std::env::temp_dir().join(format!("disclose-bench-letters-{}", std::process::id()));
    let cfg: PdfLettersConfig =
        toml::from_str(&format!("dir = \"{}\"", dir.display())).expect("config");
    let ch =
        PdfLetters::open(&cfg, &dir).expect("the default fonts (apt-get install fonts-noto-cjk)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let job = Arc::new(job.clone());
    let items: Vec<Item> = letters
        .into_iter()
        .enumerate()
        .map(|(i, l)| Item {
            delivery_id: i as i64 + 1,
            recipient: format!("r-{i:04}"),
            name: l.addressee.trim_end_matches("同志").to_string(),
            role: "reported".into(),
            address: Some(r#"{"postcode":"100000","lines":["某县某镇人民政府"]}"#.into()),
            attempt: 1,
            content: Arc::new(Rendered::Letter { html: l.body_html }),
        })
        .collect();
    let t = Instant::now();
    let mut delivered = 0;
    for chunk in items.chunks(50) {
        let batch = Batch {
            job: job.clone(),
            channel: ChannelKind::Letter,
            items: chunk.to_vec(),
            now: job.approval.approved_at,
        };
        delivered += rt
            .block_on(ch.deliver(&batch))
            .iter()
            .filter(|o| matches!(o, disclose::channels::Outcome::Delivered { .. }))
            .count();
    }
    let secs = t.elapsed().as_secs_f64();
    let bytes: u64 = walk(&dir);
    println!(
        "{delivered}/{n} letters through the channel in {secs:.2} s: {:.0} letters/s; {:.1} KB on disk per letter (with address sheets and manifests)",
        n as f64 / secs,
        bytes as f64 / n as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
