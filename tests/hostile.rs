//! Hostile input (SPEC §5, "clear refusal of bad input"): the corpus under `tests/corpus/` —
//! over a hundred bad jobs, each named for what it tests, with its expected refusal code and a
//! fragment of the message in `tests/corpus/EXPECTED.tsv` — fed through `disclose check --json`
//! and through the spool of a running `disclose serve`. Each gets its specific code and message,
//! nothing panics, and the service keeps serving: a good job after them all still goes out.
//! Markup and template syntax in a job's data come out escaped (HTML) or literal (text), never
//! executed. A directory CSV with phone numbers of every wrong shape reports each bad line.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::service::Service;
use common::{Scratch, repo, stdout};
use serde_json::Value;

/// The clock of every run: inside the example release's publicity period, so that the only
/// reason a job is refused is the fault it was made with.
const CLOCK: &str = "2026-11-26T10:00:00+08:00";

/// One row of `tests/corpus/EXPECTED.tsv`.
struct Case {
    file: String,
    code: String,
    fragment: String,
}

fn corpus() -> Vec<Case> {
    let text = std::fs::read_to_string(repo().join("tests/corpus/EXPECTED.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "EXPECTED.tsv: {l}");
            Case {
                file: f[0].into(),
                code: f[1].into(),
                fragment: f[2].into(),
            }
        })
        .collect()
}

fn job_path(c: &Case) -> PathBuf {
    repo().join("tests/corpus/jobs").join(&c.file)
}

fn cmd(s: &Scratch, args: &[&str]) -> Command {
    let mut c = s.command(args);
    c.env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
        .env("DISCLOSE_CLOCK", CLOCK)
        .env_remove("DISCLOSE_QUEUE_AMQP_URL");
    c
}

fn run(s: &Scratch, args: &[&str]) -> String {
    let out = cmd(s, args).output().unwrap();
    assert!(
        out.status.success(),
        "disclose {args:?}\n{}\n{}",
        stdout(&out),
        common::stderr(&out)
    );
    stdout(&out)
}

/// The example directory's groups, which the corpus's jobs address.
fn import_examples(s: &Scratch) {
    for (group, kind, file) in [
        ("subscribers", "public", "subscribers.csv"),
        ("press", "public", "press.csv"),
        ("unit:czj", "unit", "unit-czj.csv"),
        ("leadership", "leadership", "leadership.csv"),
    ] {
        let path = format!("examples/directory/{file}");
        run(
            s,
            &[
                "directory",
                "import",
                "--group",
                group,
                "--kind",
                kind,
                &path,
            ],
        );
    }
}

/// The refusal codes the README lists under "The rules".
fn readme_codes() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let rules = readme.split("## The rules").nth(1).unwrap();
    let list = rules
        .split("each with its stable code:")
        .nth(1)
        .unwrap()
        .split("A refused job")
        .next()
        .unwrap();
    list.split('·')
        .map(|c| c.trim().trim_matches('`').to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn the_corpus_has_over_a_hundred_cases_and_every_refusal_code() {
    let cases = corpus();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let codes: BTreeSet<String> = cases.iter().map(|c| c.code.clone()).collect();
    let wanted = readme_codes();
    assert_eq!(wanted.len(), 12, "{wanted:?}");
    let missing: Vec<_> = wanted.difference(&codes).collect();
    assert!(missing.is_empty(), "no corpus case for {missing:?}");
    for c in &cases {
        assert!(job_path(c).exists(), "{}", c.file);
        assert!(
            c.code == "accepted" || wanted.contains(&c.code),
            "{}: {} is not a README code",
            c.file,
            c.code
        );
        assert!(c.code == "accepted" || !c.fragment.is_empty(), "{}", c.file);
    }
    // The generator's list and the expectations agree file for file.
    let generated = std::fs::read_to_string(repo().join("tests/corpus/cases.tsv")).unwrap();
    let generated: BTreeSet<(String, String)> = generated
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect();
    let expected: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.file.clone(), c.code.clone()))
        .collect();
    assert_eq!(generated, expected);
}

/// The refusal of `code` in a `check --json` object or a spool `.reason`, holding `fragment`.
fn has_refusal(refusals: &[(String, String)], code: &str, fragment: &str) -> bool {
    refusals
        .iter()
        .any(|(c, m)| c == code && m.contains(fragment))
}

#[test]
fn check_refuses_every_corpus_job_with_its_code_and_message() {
    let s = Scratch::new("hostile-check");
    import_examples(&s);
    let mut wrong = Vec::new();
    for c in corpus() {
        let path = job_path(&c);
        let out = cmd(&s, &["check", "--json", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = common::stderr(&out);
        assert!(!err.contains("panicked"), "{}: {err}", c.file);
        let text = stdout(&out);
        let v: Value = match text.lines().next().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => {
                wrong.push(format!("{}: no JSON answer: {text}{err}", c.file));
                continue;
            }
        };
        let refusals: Vec<(String, String)> = v["refusals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["code"].as_str().unwrap().to_string(),
                    r["message"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let ok = if c.code == "accepted" {
            v["decision"] == "accepted" && out.status.code() == Some(0)
        } else {
            v["decision"] == "refused"
                && out.status.code() == Some(1)
                && has_refusal(&refusals, &c.code, &c.fragment)
        };
        if !ok {
            wrong.push(format!(
                "{}: expected {} «{}», got {} {refusals:?}",
                c.file, c.code, c.fragment, v["decision"]
            ));
        }
        if c.file == "accepted-template-injection-in-data.json" {
            injection_is_inert_in_previews(&v["previews"]);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The data of `accepted-template-injection-in-data.json` carries `{{ … }}`, `{% … %}`,
/// `${…}` and `<script>`: HTML comes out escaped, text literal, and no template syntax in data
/// is expanded (the address field names `{{report_phone}}`, which must not become the number).
fn injection_is_inert_in_previews(previews: &Value) {
    let website = previews["website"].as_str().unwrap();
    assert!(!website.contains("<script"), "{website}");
    assert!(!website.contains("<img"), "{website}");
    assert!(
        website.contains("{{ secret }}&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{website}"
    );
    assert!(
        website.contains("{{report_phone}}&lt;/p&gt;&lt;script&gt;"),
        "{website}"
    );
    let email = previews["email"].as_str().unwrap();
    // Plain text: shown as written, nothing expanded.
    assert!(
        email.contains("{{ secret }}<script>alert(1)</script>"),
        "{email}"
    );
    assert!(email.contains("{% include '/etc/passwd' %}"), "{email}");
    assert!(email.contains("来信来访地址：{{report_phone}}"), "{email}");
}

fn json_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Drop `bytes` into the spool as `name` the way a writer must: a temporary name, then rename.
fn spool(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

#[test]
fn the_spool_refuses_every_corpus_job_with_its_reason_and_the_service_keeps_serving() {
    let s = Scratch::new("hostile-spool");
    import_examples(&s);
    let dir = s.path("spool");
    let cases = corpus();
    let mut svc = Service::spawn(cmd(&s, &["serve"]), s.path("serve.log"));
    // Dropped in while the service runs, in name order, then a good job after them all.
    for (i, c) in cases.iter().enumerate() {
        spool(
            &dir,
            &format!("{i:04}-{}", c.file),
            &std::fs::read(job_path(c)).unwrap(),
        );
    }
    let good =
        std::fs::read(repo().join("examples/jobs/03-investigation-result-letters.json")).unwrap();
    spool(&dir, "9999-good-letters.json", &good);
    let total = cases.len() + 1;
    svc.until("every spooled file to be decided", 120, |_| {
        json_files(&dir).is_empty()
            && json_files(&dir.join("done")).len() + json_files(&dir.join("refused")).len() == total
    });
    svc.until("the good job's letters", 60, |_| {
        std::fs::read_to_string(s.path("out/outbox/letter.jsonl"))
            .map(|t| t.lines().count() == 2)
            .unwrap_or(false)
    });

    let mut wrong = Vec::new();
    let refused = json_files(&dir.join("refused"));
    let done = json_files(&dir.join("done"));
    for (i, c) in cases.iter().enumerate() {
        let name = format!("{i:04}-{}", c.file);
        if c.code == "accepted" {
            if !done.contains(&name) {
                wrong.push(format!("{name}: not accepted"));
            }
            continue;
        }
        if !refused.contains(&name) {
            wrong.push(format!("{name}: not in refused/"));
            continue;
        }
        // One reason a line: `code (article): message`.
        let reason = std::fs::read_to_string(dir.join("refused").join(format!("{name}.reason")))
            .unwrap_or_default();
        let refusals: Vec<(String, String)> = reason
            .lines()
            .filter_map(|l| {
                let (code, rest) = l.split_once(" (")?;
                let (_, message) = rest.split_once("): ")?;
                Some((code.to_string(), message.to_string()))
            })
            .collect();
        if !has_refusal(&refusals, &c.code, &c.fragment) {
            wrong.push(format!(
                "{name}: expected {} «{}», reason: {reason}",
                c.code, c.fragment
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(done.contains(&"9999-good-letters.json".to_string()));
    assert!(!svc.log().contains("panicked"), "{}", svc.log());

    // The injection job went out: its page shows the markup escaped, runs none of it.
    let injection = cases
        .iter()
        .find(|c| c.file == "accepted-template-injection-in-data.json")
        .unwrap();
    let id = serde_json::from_slice::<Value>(&std::fs::read(job_path(injection)).unwrap()).unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page = s.path(&format!("out/site/website/{id}.html"));
    svc.until("the injection job's page", 60, |_| page.exists());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<script>x()"), "{html}");
    assert!(!html.contains("<img src"), "{html}");
    assert!(
        html.contains("{{ secret }}&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );

    let status = svc.terminate(30);
    assert!(status.success(), "{status}\n{}", svc.log());
    let verify = cmd(&s, &["audit", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn a_directory_of_bad_phone_numbers_reports_each_bad_line() {
    let s = Scratch::new("hostile-phones");
    let csv = repo().join("tests/corpus/directory/bad-phones.csv");
    let out = cmd(
        &s,
        &[
            "directory",
            "import",
            "--group",
            "hostile",
            "--kind",
            "public",
            csv.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let text = format!("{}{}", stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{text}");
    let expected =
        std::fs::read_to_string(repo().join("tests/corpus/directory/EXPECTED.tsv")).unwrap();
    let reported: Vec<(usize, &str)> = text
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once("bad-phones.csv:")?;
            let (line, message) = rest.split_once(": ")?;
            Some((line.parse().ok()?, message))
        })
        .collect();
    let mut dropped = 0;
    for row in expected.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = row.split('\t').collect();
        let line: usize = f[0].parse().unwrap();
        let on_line: Vec<&str> = reported
            .iter()
            .filter(|(l, _)| *l == line)
            .map(|(_, m)| *m)
            .collect();
        match f[1] {
            "dropped" => {
                dropped += 1;
                assert!(
                    on_line.len() == 1
                        && on_line[0].starts_with("phone dropped: ")
                        && on_line[0].contains(f[2]),
                    "line {line}: expected «{}», got {on_line:?}\n{text}",
                    f[2]
                );
            }
            _ => assert!(on_line.is_empty(), "line {line} is kept: {on_line:?}"),
        }
    }
    assert_eq!(
        reported.len(),
        dropped,
        "a report on no expected line:\n{text}"
    );
    // The reports mask the numbers (STYLE: numbers masked in logs and messages).
    for number in ["138001380001", "13800138000 ext 12", "0755 8888 9999"] {
        assert!(!text.contains(number), "{number} in the clear:\n{text}");
    }
    // The members are all there; only the bad phones were dropped.
    let list = run(&s, &["directory", "list"]);
    assert!(list.contains("26 members"), "{list}");
}
