//! Lays out 1,000 one-page letters (the shipped investigation-result template, each with its
//! own recipient) and prints letters per second and bytes per letter. Run by hand, in release:
//!
//! ```text
//! cargo run --release --example bench_letters [N] [THREADS]
//! ```
//!
//! Fonts: the defaults (Debian's fonts-noto-cjk). Nothing is written to disk: this measures the
//! typesetting and PDF writing, which is what the letter channel spends its time on.

use std::path::Path;
use std::time::Instant;

use disclose::job::ChannelKind;
use disclose::letter::{self, FontSet, Letter, Style, Typesetter};
use disclose::render::{RecipientView, Rendered, Templates};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let threads: usize = args
        .next()
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
