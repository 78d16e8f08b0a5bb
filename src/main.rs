//! The `disclose` command: arguments, configuration, tracing, then the command. Nothing else.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use disclose::app::{self, App};
use disclose::config::Config;
use disclose::intake::{DecisionKind, Verdict};
use disclose::job::ChannelKind;
use disclose::ledger::{ChainStatus, Ledger, State};
use disclose::policy::GroupKind;
use disclose::render::{RecipientView, Templates};
use disclose::{approval, clock, directory};

#[derive(Parser)]
#[command(
    name = "disclose",
    version,
    about = "Discloses cadre-work information to exactly the audience and channels the measures allow"
)]
struct Cli {
    /// Configuration file (default: ./disclose.toml when present, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Logs on stderr as `human` lines or one `json` object a line (default: $DISCLOSE_LOG_FORMAT, else human).
    #[arg(long, global = true)]
    log_format: Option<disclose::logging::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide about jobs without sending anything: decision, reasons with articles, planned deliveries, previews.
    Check {
        /// One JSON object per job per line.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
    },
    /// Run jobs (files, or directories of *.json) through the whole pipeline until every due delivery has an outcome.
    Dispatch {
        /// Import the recipient directory described by DIR/groups.toml first.
        #[arg(long)]
        directory: Option<PathBuf>,
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
    },
    /// The service: intake (RabbitMQ, or the spool directory), delivery workers, scheduler, events.
    Serve,
    /// Publish jobs to the configured queue (RabbitMQ, or the spool directory), after checking each is a well-formed job.
    Submit {
        #[arg(required = true)]
        jobs: Vec<PathBuf>,
    },
    /// Jobs and their per-channel outcomes from the ledger.
    Status {
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Approval keys (the approval side and tests).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Sign a job with an approval key and print the signed job.
    Sign {
        #[arg(long)]
        key: PathBuf,
        job: PathBuf,
    },
    /// The recipient directory.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Cancel a job's deliveries not yet handed to any channel (a schedule that must not go out); recorded with the reason in the audit trail.
    Cancel {
        id: String,
        /// Why (recorded in the audit trail and shown in the compliance report).
        #[arg(long)]
        reason: String,
    },
    /// The recurring duties of disclosure (obligations.toml in the channels directory): met, due soon, open or overdue.
    Obligations {
        #[command(subcommand)]
        command: Option<ObligationsCommand>,
        /// One JSON document: every duty with its periods.
        #[arg(long)]
        json: bool,
    },
    /// The configuration itself.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The compliance report for a period (Art 17): what was disclosed, refused, corrected, retracted, cancelled, what is overdue, and whether the audit chain verifies.
    Report {
        /// First day (YYYY-MM-DD, China Standard Time), included.
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD, China Standard Time), included.
        #[arg(long)]
        to: String,
        /// html (a printable page), csv or json.
        #[arg(long, default_value = "html")]
        format: disclose::report::Format,
        /// Write here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ObligationsCommand {
    /// Record the change an obligation follows (e.g. a change in the leadership team, Art 6(2)); its period starts then.
    Change {
        /// The obligation's id in obligations.toml.
        id: String,
        /// The day the change took effect (YYYY-MM-DD, China Standard Time).
        #[arg(long)]
        on: String,
        /// What changed (kept with the record).
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check everything the configuration names — ledger, keys, policy, templates, every channel (credentials in the environment, fonts, endpoints), obligations, calendar, queue, output — and report every problem at once.
    Check {
        /// One JSON object per finding per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and name the first broken entry.
    Verify,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write DIR/ID.key (mode 0600) and DIR/ID.pub.
    New {
        #[arg(long)]
        id: String,
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Import a CSV as a group, replacing what the group held.
    Import {
        #[arg(long)]
        group: String,
        /// public, unit, leadership, committee or ad_hoc (a "unit:" group name implies unit).
        #[arg(long)]
        kind: Option<String>,
        file: PathBuf,
    },
    /// The groups and their sizes.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match cli.log_format {
        Some(f) => f,
        None => match std::env::var("DISCLOSE_LOG_FORMAT") {
            Ok(v) => match v.parse() {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("disclose: DISCLOSE_LOG_FORMAT: {e}");
                    return ExitCode::from(2);
                }
            },
            Err(_) => Default::default(),
        },
    };
    init_tracing(format);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("disclose: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr, warnings and up unless `DISCLOSE_LOG` says otherwise (e.g. `info`,
/// `disclose=debug`), as readable lines or JSON (`--log-format`).
fn init_tracing(format: disclose::logging::LogFormat) {
    let filter: tracing_subscriber::filter::Targets = std::env::var("DISCLOSE_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| "warn".parse().expect("static filter"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        disclose::logging::LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        disclose::logging::LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .event_format(disclose::logging::Json),
            )
            .try_init(),
    };
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let load = || Config::load(cli.config.as_deref()).map_err(anyhow::Error::from);
    match cli.command {
        Command::Keys {
            command: KeysCommand::New { id, dir },
        } => {
            let (key, public) = approval::generate_key(&id, &dir)?;
            println!(
                "wrote {} (secret, mode 0600) and {}",
                key.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Sign { key, job } => {
            let (key_id, signing) = approval::load_signing_key(&key)?;
            let text = std::fs::read_to_string(&job).with_context(|| job.display().to_string())?;
            let mut raw = disclose::jcs::parse_strict(&text)
                .map_err(|e| anyhow!("{}: {e}", job.display()))?;
            approval::sign(&mut raw, &key_id, &signing)?;
            println!("{}", serde_json::to_string_pretty(&raw)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { json, jobs } => check(&App::start(load()?)?, &jobs, json),
        Command::Dispatch { directory, jobs } => {
            let app = App::start(load()?)?;
            if let Some(dir) = directory {
                import_manifest(app.ledger.as_ref(), &dir)?;
            }
            dispatch(&app, &jobs)
        }
        Command::Serve => {
            disclose::memory::limit_arenas();
            let app = App::start(load()?)?;
            delivery_runtime()?.block_on(disclose::serve::serve(app))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit { jobs } => submit(&load()?, &jobs),
        Command::Config {
            command: ConfigCommand::Check { json },
        } => {
            let findings = disclose::config_check::check(&load()?);
            for f in &findings {
                if json {
                    println!("{}", serde_json::to_string(f)?);
                } else {
                    let mark = if f.ok { "✓" } else { "✗" };
                    println!("{mark} {:<16} {}", f.area, f.detail);
                }
            }
            let bad = findings.iter().filter(|f| !f.ok).count();
            if !json {
                println!();
                if bad == 0 {
                    println!("the configuration is complete");
                } else {
                    println!("{bad} problem(s)");
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Status { id, json } => status(&App::start(load()?)?, id.as_deref(), json),
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let config = load()?;
            let ledger = disclose::ledger::open(&config.ledger.url)?;
            match ledger.verify_audit()? {
                ChainStatus::Intact { entries } => {
                    println!("audit chain intact: {entries} entries verified");
                    Ok(ExitCode::SUCCESS)
                }
                ChainStatus::Broken { seq, reason } => {
                    println!("audit chain BROKEN at entry {seq}: {reason}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Cancel { id, reason } => cancel(&load()?, &id, &reason),
        Command::Obligations { command, json } => {
            let config = load()?;
            match command {
                None => obligations(&config, json),
                Some(ObligationsCommand::Change { id, on, note }) => {
                    record_change(&config, &id, &on, &note)
                }
            }
        }
        Command::Report {
            from,
            to,
            format,
            out,
        } => report(&load()?, &from, &to, format, out.as_deref()),
        Command::Directory { command } => {
            let config = load()?;
            let ledger = disclose::ledger::open(&config.ledger.url)?;
            match command {
                DirectoryCommand::Import { group, kind, file } => {
                    import(ledger.as_ref(), &group, kind.as_deref(), &file)?;
                }
                DirectoryCommand::List => {
                    for g in ledger.groups()? {
                        println!(
                            "{:<24} {:<11} {:>9} members  imported {}",
                            g.name,
                            g.kind.as_str(),
                            g.members,
                            g.imported_at
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import(ledger: &dyn Ledger, group: &str, kind: Option<&str>, file: &Path) -> anyhow::Result<()> {
    let kind = match kind {
        Some(k) => GroupKind::parse(k).ok_or_else(|| {
            anyhow!("--kind {k:?}: must be one of public, unit, leadership, committee, ad_hoc")
        })?,
        None if group.starts_with("unit:") => GroupKind::Unit,
        None => bail!(
            "--kind is required (public, unit, leadership, committee, ad_hoc) unless the group name starts with \"unit:\""
        ),
    };
    let f = std::fs::File::open(file).with_context(|| file.display().to_string())?;
    let report = directory::import_csv(ledger, group, kind, f, clock::now())
        .with_context(|| file.display().to_string())?;
    println!(
        "{group} ({}): {} members imported from {}",
        kind.as_str(),
        report.imported,
        file.display()
    );
    for p in &report.problems {
        println!("  {}:{}: {}", file.display(), p.line, p.message);
    }
    if report.problem_count > report.problems.len() as u64 {
        println!(
            "  … and {} more problems",
            report.problem_count - report.problems.len() as u64
        );
    }
    Ok(())
}

/// `DIR/groups.toml`: `[[group]] name, kind, file` — the directory a deployment starts from.
fn import_manifest(ledger: &dyn Ledger, dir: &Path) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Manifest {
        group: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        name: String,
        kind: String,
        file: PathBuf,
    }
    let path = dir.join("groups.toml");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let manifest: Manifest = toml::from_str(&text).with_context(|| path.display().to_string())?;
    for g in manifest.group {
        import(ledger, &g.name, Some(&g.kind), &dir.join(&g.file))?;
    }
    Ok(())
}

/// Check that each file is a well-formed job (shape only: the service decides the rest), then
/// hand the well-formed ones to the queue. Malformed files are named and not submitted.
fn submit(config: &Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut ready = Vec::new();
    let mut bad = 0;
    for path in app::job_files(paths)? {
        let checked = app::read_job(&path).and_then(|b| {
            disclose::job::parse(&b)
                .map(|p| (p.job.id, b))
                .map_err(|e| e.to_string())
        });
        match checked {
            Ok((id, bytes)) => ready.push((id, bytes)),
            Err(e) => {
                bad += 1;
                eprintln!("{}: not submitted: {e}", path.display());
            }
        }
    }
    let n = ready.len();
    match &config.queue.amqp_url {
        Some(_) => {
            let ids: Vec<String> = ready.iter().map(|(id, _)| id.clone()).collect();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(disclose::intake::amqp::publish(&config.queue, ready))?;
            for id in ids {
                println!(
                    "{id}: published to exchange {:?} (persistent, confirmed)",
                    config.queue.jobs_exchange
                );
            }
        }
        None => {
            for (id, bytes) in ready {
                let path = disclose::intake::spool::submit(&config.queue.spool_dir, &id, &bytes)
                    .with_context(|| {
                        format!("spooling {id} into {}", config.queue.spool_dir.display())
                    })?;
                println!("{id}: spooled as {}", path.display());
            }
        }
    }
    if bad > 0 {
        eprintln!("{n} submitted, {bad} not submitted");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Cap on deliveries listed per job by `check` (the plan itself has no cap).
const CHECK_LIST_CAP: usize = 10_000;

fn check(app: &App, paths: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let now = clock::now();
    let mut any_refused = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in app::job_files(paths)? {
        let verdict = match app::read_job(&path) {
            Ok(bytes) => app.intake.evaluate(&bytes, now)?,
            Err(message) => unreadable(message),
        };
        any_refused |= verdict.decision == DecisionKind::Refused;
        let (deliveries, total) = planned_deliveries(app, &verdict)?;
        let previews = previews(&app.intake.templates, &verdict);
        if json {
            let mut obj = json!({
                "id": verdict.id,
                "decision": verdict.decision,
                "refusals": verdict.refusals,
                "deliveries": deliveries,
                "previews": previews,
            });
            if total > deliveries.len() as u64 {
                obj["deliveries_total"] = json!(total);
            }
            writeln!(out, "{obj}")?;
        } else {
            let id = verdict.id.as_deref().unwrap_or("(no id)");
            writeln!(
                out,
                "{}: {id}: {}",
                path.display(),
                decision_word(verdict.decision)
            )?;
            for r in &verdict.refusals {
                writeln!(
                    out,
                    "  ✗ {} ({}): {}",
                    r.code.as_str(),
                    r.article,
                    r.message
                )?;
            }
            if verdict.decision == DecisionKind::Accepted {
                let mut per_channel: BTreeMap<&str, u64> = BTreeMap::new();
                for d in &deliveries {
                    *per_channel
                        .entry(d["channel"].as_str().unwrap_or("?"))
                        .or_default() += 1;
                }
                for (ch, n) in per_channel {
                    writeln!(out, "  → {ch}: {n} deliveries")?;
                }
                for (ch, text) in previews.as_object().into_iter().flatten() {
                    writeln!(out, "  ── {ch} preview ──")?;
                    for line in text.as_str().unwrap_or("").lines().take(12) {
                        writeln!(out, "    {line}")?;
                    }
                }
            }
        }
    }
    Ok(if any_refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn unreadable(message: String) -> Verdict {
    Verdict {
        id: None,
        decision: DecisionKind::Refused,
        refusals: vec![disclose::policy::Refusal::new(
            disclose::policy::Code::Malformed,
            message,
        )],
        job: None,
        plan: None,
        planned: BTreeMap::new(),
    }
}

fn decision_word(d: DecisionKind) -> &'static str {
    match d {
        DecisionKind::Accepted => "accepted",
        DecisionKind::Refused => "REFUSED",
        DecisionKind::Duplicate => "duplicate (seen before; nothing sent again)",
    }
}

/// The deliveries an accepted plan would make, as `{channel, recipient}`, up to the cap; and the total.
fn planned_deliveries(app: &App, v: &Verdict) -> anyhow::Result<(Vec<Value>, u64)> {
    let (Some(job), Some(plan)) = (&v.job, &v.plan) else {
        return Ok((vec![], 0));
    };
    let mut list = Vec::new();
    let mut total = 0u64;
    let mut push = |channel: ChannelKind, recipient: &str, list: &mut Vec<Value>| {
        total += 1;
        if list.len() < CHECK_LIST_CAP {
            list.push(json!({"channel": channel, "recipient": recipient}));
        }
    };
    if let Some(target) = &job.corrects {
        // A correction goes to exactly those the original reached.
        for d in app.ledger.deliveries(target, usize::MAX >> 1)? {
            let reached =
                d.state == State::Delivered.as_str() || d.state == State::Unknown.as_str();
            if reached
                && plan.channels.iter().any(|c| c.as_str() == d.channel)
                && let Some(c) = ChannelKind::parse(&d.channel)
            {
                push(c, &d.recipient, &mut list);
            }
        }
        return Ok((list, total));
    }
    for &channel in &plan.channels {
        if channel.is_publication() {
            push(channel, "page", &mut list);
            continue;
        }
        for r in &plan.recipients {
            if reachable(
                channel,
                [&r.phone, &r.email, &r.wechat_openid, &r.wecom_userid],
            ) {
                push(channel, &r.id, &mut list);
            }
        }
        for group in &plan.groups {
            let mut after: Option<String> = None;
            loop {
                let page = app.ledger.members(group, after.as_deref(), 5_000)?;
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                for m in &page {
                    let addresses = [&m.phone, &m.email, &m.wechat_openid, &m.wecom_userid];
                    if reachable(channel, addresses) && !m.opted_out {
                        push(channel, &m.id, &mut list);
                    }
                }
            }
        }
    }
    Ok((list, total))
}

/// Whether someone with these addresses (phone, e-mail, openid, WeCom userid) can be reached on
/// `channel`. Letters always can: without a postal address they go by hand.
fn reachable(channel: ChannelKind, [phone, email, openid, userid]: [&Option<String>; 4]) -> bool {
    match channel {
        ChannelKind::Sms => phone.is_some(),
        ChannelKind::Email => email.is_some(),
        ChannelKind::Wechat => openid.is_some(),
        ChannelKind::Wecom => userid.is_some(),
        _ => true,
    }
}

/// What each channel would show, rendered for the first named recipient where it is personal.
fn previews(templates: &Templates, v: &Verdict) -> Value {
    let (Some(job), Some(plan)) = (&v.job, &v.plan) else {
        return json!({});
    };
    let who = job
        .audience
        .recipients
        .first()
        .map(|r| RecipientView {
            id: r.id.clone(),
            name: r.name.clone(),
            role: r.role.clone(),
        })
        .unwrap_or(RecipientView {
            id: "preview".into(),
            name: "（收件人）".into(),
            role: "member".into(),
        });
    let mut out = serde_json::Map::new();
    for &channel in &plan.channels {
        let recipient = Templates::is_personal(channel).then_some(&who);
        let text = if job.kind == disclose::job::Kind::Retraction && channel.is_publication() {
            format!(
                "(the page of {} is withdrawn and replaced by a withdrawal notice)",
                job.corrects.as_deref().unwrap_or("?")
            )
        } else {
            match templates.render(job, channel, recipient) {
                Ok(r) => r.preview(),
                Err(e) => format!("(cannot render: {e})"),
            }
        };
        out.insert(channel.as_str().to_string(), Value::String(text));
    }
    Value::Object(out)
}

fn dispatch(app: &App, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = app::job_files(paths)?;
    let mut verdicts: Vec<(PathBuf, Verdict)> = Vec::new();
    for path in files {
        let now = clock::now();
        let verdict = match app::read_job(&path) {
            Ok(bytes) => app.intake.admit(&bytes, now)?,
            Err(message) => {
                let v = unreadable(message);
                app.ledger.refuse(None, b"", &v.refusals, now)?;
                v
            }
        };
        verdicts.push((path, verdict));
    }
    let ids: Vec<String> = verdicts.iter().filter_map(|(_, v)| v.id.clone()).collect();
    let terminal = std::io::stderr().is_terminal();
    // Only the progress bar needs it, and counting walks every delivery of the jobs.
    let total_open: u64 = if terminal {
        let counts = app.ledger.counts(&ids)?;
        [State::Pending, State::Sending, State::Unknown]
            .iter()
            .map(|s| counts.get(s).copied().unwrap_or(0))
            .sum()
    } else {
        0
    };
    let rt = delivery_runtime()?;
    let engine = app.engine.clone();
    rt.block_on(async move {
        let progress = terminal.then(|| {
            let engine = engine.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    draw_progress(engine.finished.load(Ordering::Relaxed), total_open);
                }
            })
        });
        let result = engine.drain().await;
        if let Some(p) = progress {
            p.abort();
            draw_progress(engine.finished.load(Ordering::Relaxed), total_open);
            eprintln!();
        }
        result
    })?;
    print_summary(app, &verdicts)?;
    let refused = verdicts
        .iter()
        .any(|(_, v)| v.decision == DecisionKind::Refused);
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The runtime of `serve` and `dispatch`: one worker thread. The ledger, the intake's commits and
/// the letters run on the blocking pool; what is left to the workers (building calls, reading
/// answers) took under half a core sending a million SMS. With a worker per core, tasks hopped
/// between the two and each hop woke a parked thread: through the Tencent emulator `disclose`
/// spent 0.28–0.32 ms of CPU a call with two workers and 0.24–0.27 with one in `dispatch`,
/// 0.36–0.38 and 0.29–0.32 in `serve`; the fan-out through the outbox took the same time, and in
/// a short soak the latency to `job.completed` stayed as it was (BENCHMARKS.md, session 13).
fn delivery_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
}

fn draw_progress(done: u64, total: u64) {
    let total = total.max(1);
    let width = 30usize;
    let filled = ((done.min(total) as f64 / total as f64) * width as f64) as usize;
    eprint!(
        "\r[{}{}] {done}/{total} deliveries",
        "=".repeat(filled),
        " ".repeat(width - filled)
    );
    let _ = std::io::stderr().flush();
}

fn print_summary(app: &App, verdicts: &[(PathBuf, Verdict)]) -> anyhow::Result<()> {
    const COLS: [State; 6] = [
        State::Delivered,
        State::Failed,
        State::Skipped,
        State::Unknown,
        State::Pending,
        State::Cancelled,
    ];
    println!();
    println!(
        "{:<28} {:<10} {:<9} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8} {:>9}",
        "job",
        "decision",
        "channel",
        "planned",
        "delivered",
        "failed",
        "skipped",
        "unknown",
        "pending",
        "cancelled"
    );
    for (path, v) in verdicts {
        let id = v.id.clone().unwrap_or_else(|| path.display().to_string());
        match v.decision {
            DecisionKind::Refused => {
                println!("{id:<28} {:<10}", "refused");
                for r in &v.refusals {
                    println!("    {} ({}): {}", r.code.as_str(), r.article, r.message);
                }
            }
            DecisionKind::Duplicate => println!(
                "{id:<28} {:<10} (seen before; nothing planned or sent again)",
                "duplicate"
            ),
            DecisionKind::Accepted => {
                let summary = app.ledger.job_summary(&id)?;
                let outcomes = summary
                    .as_ref()
                    .map(|s| s.outcomes.clone())
                    .unwrap_or_default();
                let mut first = true;
                for (channel, planned) in &v.planned {
                    let states = outcomes.get(channel.as_str()).cloned().unwrap_or_default();
                    let cell = |s: State| states.get(s.as_str()).copied().unwrap_or(0);
                    let (label, decision) = if first {
                        (id.as_str(), "accepted")
                    } else {
                        ("", "")
                    };
                    first = false;
                    let mut line = format!(
                        "{label:<28} {decision:<10} {:<9} {planned:>9}",
                        channel.as_str()
                    );
                    for (i, s) in COLS.iter().enumerate() {
                        let w = [9, 7, 8, 8, 8, 9][i];
                        line.push_str(&format!(" {:>w$}", cell(*s)));
                    }
                    println!("{line}");
                    if cell(State::Pending) > 0
                        && let Some(end) = app.engine.quiet_until(*channel, clock::now())
                    {
                        println!(
                            "    {}: quiet hours; the pending deliveries go out after {}",
                            channel.as_str(),
                            end.format("%Y-%m-%d %H:%M")
                        );
                    }
                }
                if let Some(s) = summary.filter(|s| s.status == "scheduled") {
                    println!(
                        "    scheduled: goes out at {}",
                        s.publish_at.unwrap_or_default()
                    );
                }
            }
        }
    }
    println!();
    for (kind, channel) in app.engine.channels() {
        if let Some(loc) = channel.location() {
            println!("  {kind:<9} {} → {}", channel.transport(), loc.display());
        }
    }
    Ok(())
}

fn status(app: &App, id: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    match id {
        None => {
            let jobs = app.ledger.jobs(100)?;
            if json {
                println!("{}", serde_json::to_string(&jobs)?);
                return Ok(ExitCode::SUCCESS);
            }
            for j in jobs {
                let line: Vec<String> = j
                    .outcomes
                    .iter()
                    .map(|(ch, st)| {
                        format!(
                            "{ch} {}",
                            st.iter()
                                .map(|(s, n)| format!("{s}={n}"))
                                .collect::<Vec<_>>()
                                .join(",")
                        )
                    })
                    .collect();
                println!(
                    "{:<28} {:<11} {:<4} {:<10} {}  {}",
                    j.id,
                    j.status,
                    j.category,
                    j.scope,
                    j.title,
                    line.join("; ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(id) => {
            let Some(summary) = app.ledger.job_summary(id)? else {
                eprintln!("disclose: no job {id:?} in the ledger");
                return Ok(ExitCode::FAILURE);
            };
            let deliveries = app.ledger.deliveries(id, 200)?;
            if json {
                println!("{}", json!({"job": summary, "deliveries": deliveries}));
                return Ok(ExitCode::SUCCESS);
            }
            println!("{} — {}", summary.id, summary.title);
            println!(
                "  {} · category {} · scope {} · accepted {}",
                summary.status, summary.category, summary.scope, summary.accepted_at
            );
            for (ch, states) in &summary.outcomes {
                let s: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
                println!("  {ch:<9} {}", s.join(" · "));
            }
            for d in deliveries {
                let code = d.code.map(|c| format!(" [{c}]")).unwrap_or_default();
                println!(
                    "    {:<9} {:<20} {:<10} attempts {}{code}",
                    d.channel, d.recipient, d.state, d.attempts
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `disclose cancel`: what has not been handed to a channel is cancelled; what has, only a
/// retraction can answer (Art 17).
fn cancel(config: &Config, id: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let reason = reason.trim();
    if reason.is_empty() {
        bail!(
            "--reason must say why {id} is cancelled: it is recorded in the audit trail (Art 17)"
        );
    }
    let ledger = disclose::ledger::open(&config.ledger.url)?;
    let Some(c) = ledger.cancel(id, reason, clock::now())? else {
        if ledger.was_refused(id)? {
            eprintln!(
                "disclose: job {id:?} was refused, so nothing of it was planned and there is nothing to cancel"
            );
        } else {
            eprintln!("disclose: no job {id:?} in the ledger");
        }
        return Ok(ExitCode::FAILURE);
    };
    let counts = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (cancelled, handed_over) = (c.cancelled_total(), c.handed_over());
    if cancelled == 0 {
        if handed_over > 0 {
            eprintln!(
                "disclose: nothing left to cancel: every delivery of {id} has been handed to its channel ({}). \
                 To withdraw what went out, dispatch a retraction (\"kind\": \"retraction\", \"corrects\": \"{id}\"; Art 17).",
                counts(&c.untouched)
            );
        } else {
            eprintln!(
                "disclose: nothing left to cancel: no delivery of {id} is waiting ({})",
                counts(&c.untouched)
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{id}: cancelled {cancelled} deliveries not yet sent ({})",
        counts(&c.cancelled)
    );
    if handed_over > 0 {
        println!(
            "  {handed_over} had already been handed to their channels and are untouched ({}); \
             to withdraw those, dispatch a retraction (Art 17)",
            counts(&c.untouched)
        );
    }
    println!("  reason (in the audit trail): {reason}");
    Ok(ExitCode::SUCCESS)
}

fn work_calendar(config: &Config) -> disclose::calendar::WorkCalendar {
    disclose::calendar::WorkCalendar::embedded().with_overrides(&config.calendar)
}

/// `disclose obligations`: each duty's periods as of today. Exit 1 when one is overdue or its
/// due date cannot be worked out, so that a daily run can raise the alarm.
fn obligations(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    use disclose::obligations::{self, Due, Obligations};
    let duties = Obligations::load(&config.paths.channels_dir)?;
    let ledger = disclose::ledger::open(&config.ledger.url)?;
    let today = clock::now().date_naive();
    let states = obligations::evaluate(&duties, ledger.as_ref(), &work_calendar(config), today)?;
    let alarm = states
        .iter()
        .flat_map(|s| &s.periods)
        .any(|p| p.status.is_alarm());
    if json {
        println!(
            "{}",
            json!({"as_of": today, "source": duties.source, "obligations": states})
        );
    } else {
        match &duties.source {
            Some(path) => println!("obligations as of {today} ({})", path.display()),
            None => println!(
                "no obligations configured: {} does not exist",
                config.paths.channels_dir.join(obligations::FILE).display()
            ),
        }
        for s in &states {
            let d = &s.duty;
            println!();
            println!(
                "{} — {} ({}, category {}; {})",
                d.id,
                d.title,
                d.article,
                d.category,
                d.due.describe()
            );
            if s.periods.is_empty() {
                match d.due {
                    Due::Year { first_year, .. } => println!(
                        "  no period has begun: the work of {first_year} is owed in {}",
                        first_year + 1
                    ),
                    Due::Change { .. } => println!(
                        "  no change recorded (record one with `disclose obligations change {} --on DATE`)",
                        d.id
                    ),
                }
            }
            for p in &s.periods {
                let note = p
                    .note
                    .as_ref()
                    .map(|n| format!(" [{n}]"))
                    .unwrap_or_default();
                println!("  {:<18} {}{note}", p.label, p.message);
            }
        }
    }
    Ok(if alarm {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `disclose obligations change ID --on DATE`: a duty after a change (Art 6(2)) starts its period.
fn record_change(config: &Config, id: &str, on: &str, note: &str) -> anyhow::Result<ExitCode> {
    use disclose::obligations::{Due, Obligations};
    let duties = Obligations::load(&config.paths.channels_dir)?;
    let Some(duty) = duties.get(id) else {
        let known: Vec<&str> = duties.duties.iter().map(|d| d.id.as_str()).collect();
        bail!(
            "no obligation {id:?} in {} (known: {})",
            config
                .paths
                .channels_dir
                .join(disclose::obligations::FILE)
                .display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    let Due::Change { working_days } = duty.due else {
        bail!(
            "obligation {id:?} falls due every year, not after a change: there is no change to record"
        );
    };
    let on = chrono::NaiveDate::parse_from_str(on.trim(), "%Y-%m-%d")
        .map_err(|e| anyhow!("--on {on:?} is not a day written YYYY-MM-DD: {e}"))?;
    let now = clock::now();
    if on > now.date_naive() {
        bail!("--on {on} is in the future: record a change once it has taken effect");
    }
    let ledger = disclose::ledger::open(&config.ledger.url)?;
    let rec = ledger.record_change(id, on, note.trim(), now)?;
    println!(
        "{id}: change of {on} recorded (change {}; in the audit trail)",
        rec.seq
    );
    match work_calendar(config).add_working_days(on + chrono::Duration::days(1), working_days) {
        Ok(due) => println!(
            "  {} ({}) is due by {due}: {working_days} working days after the change",
            duty.title, duty.article
        ),
        Err(e) => println!("  the due date cannot be worked out yet: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `disclose report` (Art 17). Exit 1 when the audit chain does not verify: the report is still
/// written, and says so first.
fn report(
    config: &Config,
    from: &str,
    to: &str,
    format: disclose::report::Format,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use disclose::report::{self, Format, Period};
    let period = Period::parse(from, to)?;
    let duties = disclose::obligations::Obligations::load(&config.paths.channels_dir)?;
    let ledger = disclose::ledger::open(&config.ledger.url)?;
    let r = report::build(
        ledger.as_ref(),
        &duties,
        &work_calendar(config),
        period,
        clock::now(),
    )?;
    let text = match format {
        Format::Html => r.to_html(),
        Format::Csv => r.to_csv(),
        Format::Json => r.to_json(),
    };
    match out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| path.display().to_string())?;
            println!(
                "report {} to {}: {} jobs, {} refusals, {} corrections/retractions/cancellations, {} obligations overdue or late → {}",
                period.from,
                period.to,
                r.jobs.len(),
                r.refusals.len(),
                r.amendments.len(),
                r.obligations.len(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    if !r.audit.verified {
        eprintln!(
            "disclose: the audit chain does NOT verify (entry {}: {}); the report says so at the top",
            r.audit.broken_at.unwrap_or(0),
            r.audit.reason.as_deref().unwrap_or("")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
