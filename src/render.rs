//! Rendering (SPEC §4, "templates under `templates/<template>/`"): turns an accepted [`Job`]
//! into exactly what each channel would send, so that `disclose check` can preview it and the
//! channels never format anything themselves.
//!
//! # Layout
//! One folder per notice under `templates/`, one file per channel:
//!
//! | file | channel | registry |
//! |---|---|---|
//! | `website.html.hbs` | website (article body fragment; the page chrome is the channel's) | HTML |
//! | `intranet.html.hbs` | intranet (optional; falls back to `website.html.hbs`) | HTML |
//! | `email.subject.hbs`, `email.txt.hbs`, `email.html.hbs` | email (all three, or none) | text, text, HTML |
//! | `email.toml` | email settings: `attach_letter = true` attaches the folder's letter as PDF | – |
//! | `sms.toml` | sms: a registered provider template with parameters | text |
//! | `wechat.toml` | wechat: official-account template message | text |
//! | `wecom.md.hbs` | wecom: markdown application message | text |
//! | `letter.html.hbs` | letter: the body only (`<h2>` 一、 `<h3>` （一） `<h4>` 1. `<h5>` （1） `<p>`) | HTML |
//!
//! There are two handlebars registries, both strict: the HTML one escapes every value (and
//! refuses `{{{…}}}` and `{{&…}}` at load time, so job data can never become markup), the text
//! one escapes nothing (an SMS must say `A&B`, not `A&amp;B`). Every file is compiled in
//! [`Templates::load`]: a broken template fails start-up, naming the file, instead of failing
//! the first job that needs it. Data is only ever substituted, never compiled: `{{` in job data
//! comes out as `{{`.
//!
//! # Render context
//! Every template sees:
//!
//! | name | value |
//! |---|---|
//! | `id`, `kind`, `title`, `category`, `scope` | the job's, as strings (`"release"`, `"6.3"`, `"public"`) |
//! | `corrects` | the corrected job's id (corrections and retractions only) |
//! | `data` | the job's `data` object, as given |
//! | `recipient` | `{id, name, role}`, only for personal channels (email, letter); absent otherwise, so a publication template that names a person fails strictly |
//! | `approval` | `{approver, reference, approved_at}`, the date in Chinese (`2026年11月28日`) |
//! | `schedule` | `{publish_at, expires_at}` as Chinese dates (`2026年12月1日`), `publish_at_time`, `expires_at_time` (`2026年12月1日 09:00`); each only when the job has it |
//! | `publish_date` | Chinese date of `publish_at`, else of the approval |
//! | `case_no` | `complaint.case_no`, else `data.case_no` when that is a string |
//!
//! Dates are written in the offset the job gives them in. Helpers beyond handlebars' built-ins:
//! `eq` (strict: a missing operand is an error naming it, not `false`), `paragraphs` (HTML only:
//! each non-empty line of a text as an escaped `<p>`), `fail "message"` (a template refuses a
//! case it does not cover, e.g. a letter to a role it has no wording for).
//!
//! # SMS
//! Mainland SMS carries a registered template id and parameters, not free text. `sms.toml`:
//! ```toml
//! text = "县委组织部公示：${title}，公示期至${until}。"   # the text registered with the provider
//! sign_name = "某县组工"                               # optional; 【sign】 counts in the length
//! [params]                                             # file order = Tencent's positional order
//! title = "{{title}}"
//! until = "{{schedule.expires_at}}"
//! [providers.tencent]
//! template_id = "1234567"
//! [providers.aliyun]
//! template_code = "SMS_000000001"
//! ```
//! `params` may also be written as an array `[{ name = "title", value = "{{title}}" }, …]`.
//! Every `${x}` must have a param and every param a `${x}` (Tencent requires the parameter count
//! to equal the template's variable count). The preview substitutes in one pass, so a value
//! containing `${x}` stays literal. Length counts every character as 1; ≤ 70 is one segment,
//! beyond that segments of 67 (providers.md §1.9); over 500 is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, Output, RenderContext, RenderErrorReason, ScopedJson,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::{ChannelKind, Job};

/// Alibaba's maximum length of one SMS including the signature (providers.md §1.9).
pub const SMS_MAX_CHARS: usize = 500;

/// A person a personal channel (email, letter) addresses.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientView {
    pub id: String,
    pub name: String,
    pub role: String,
}

/// Exactly what a channel would send for one job (and, for personal channels, one recipient).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Rendered {
    /// Website and intranet: the article body; the channel adds the page around it.
    Page {
        title: String,
        html: String,
    },
    Sms {
        /// The registered template text with `${name}` placeholders.
        text: String,
        sign_name: Option<String>,
        /// In file order: Tencent sends the values positionally, Alibaba by name.
        params: Vec<(String, String)>,
        /// Provider (`tencent`, `aliyun`) → its template id or code.
        template_ids: BTreeMap<String, String>,
        /// Length of `【sign】` + expanded text, every character counting 1.
        chars: usize,
        segments: usize,
    },
    Wechat {
        template_id: String,
        url: Option<String>,
        data: Vec<(String, String)>,
    },
    Wecom {
        markdown: String,
    },
    Email {
        subject: String,
        text: String,
        html: String,
        /// The letter body (`letter.html.hbs`) when `email.toml` sets `attach_letter`: the
        /// e-mail channel lays it out and attaches it as PDF.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        letter: Option<String>,
    },
    /// The body of an official letter; the letter channel lays out header, reference number,
    /// addressee, signature block and date (GB/T 9704).
    Letter {
        html: String,
    },
}

impl Rendered {
    /// The human-readable text of what would be sent (for `disclose check`).
    pub fn preview(&self) -> String {
        match self {
            Rendered::Page { title, html } => format!("{title}\n\n{html}"),
            Rendered::Sms {
                text,
                sign_name,
                params,
                chars,
                segments,
                ..
            } => format!(
                "{} ({chars} chars, {segments} segments)",
                sms_expand(sign_name.as_deref(), text, params)
            ),
            Rendered::Wechat { url, data, .. } => {
                let mut lines: Vec<String> =
                    data.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                if let Some(url) = url {
                    lines.push(format!("url: {url}"));
                }
                lines.join("\n")
            }
            Rendered::Wecom { markdown } => markdown.clone(),
            Rendered::Email { subject, text, .. } => format!("Subject: {subject}\n\n{text}"),
            Rendered::Letter { html } => html.clone(),
        }
    }
}

/// `【sign】` + text with each `${name}` replaced by its value, in one pass.
fn sms_expand(sign_name: Option<&str>, text: &str, params: &[(String, String)]) -> String {
    let mut out = String::new();
    if let Some(sign) = sign_name {
        out.push_str(&format!("【{sign}】"));
    }
    for piece in parse_placeholders(text).unwrap_or_else(|_| vec![Piece::Lit(text.to_string())]) {
        match piece {
            Piece::Lit(s) => out.push_str(&s),
            Piece::Var(name) => match params.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("${{{name}}}")),
            },
        }
    }
    out
}

/// Billed segments of an SMS of `chars` characters (providers.md §1.9): ≤ 70 is one, beyond
/// that one per 67.
pub fn sms_segments(chars: usize) -> usize {
    if chars <= 70 { 1 } else { chars.div_ceil(67) }
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Var(String),
}

/// Split an SMS template text into literals and `${name}` placeholders.
fn parse_placeholders(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            pieces.push(Piece::Lit(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated placeholder at {:?}", &rest[start..]))?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "placeholder ${{{name}}}: names are letters, digits and _"
            ));
        }
        pieces.push(Piece::Var(name.to_string()));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest.to_string()));
    }
    Ok(pieces)
}

/// Load errors name the file; render errors name the template, the channel and what is missing.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("unknown template {template:?}")]
    UnknownTemplate { template: String },
    #[error("template {template:?} has no file for channel {channel}")]
    MissingChannel {
        template: String,
        channel: ChannelKind,
    },
    #[error(
        "template {template:?}, channel {channel} ({file}): variable `{variable}` is missing (strict mode)"
    )]
    MissingVariable {
        template: String,
        channel: ChannelKind,
        file: String,
        variable: String,
    },
    #[error("template {template:?}, channel {channel} ({file}): {message}")]
    Failed {
        template: String,
        channel: ChannelKind,
        file: String,
        message: String,
    },
}

fn load_err(path: &Path, message: impl Into<String>) -> RenderError {
    RenderError::Load {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// An ordered list of `key = "value"` pairs: either a TOML table (file order recovered from the
/// key spans, since `toml` without `preserve_order` sorts tables) or an array of
/// `{ name, value }` tables.
#[derive(Debug, Default)]
struct Ordered(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of strings or an array of { name, value } tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries: Vec<(toml::Spanned<String>, String)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<toml::Spanned<String>, String>()? {
                    entries.push((k, v));
                }
                entries.sort_by_key(|(k, _)| k.span().start);
                Ok(Ordered(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.into_inner(), v))
                        .collect(),
                ))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Ordered, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Entry {
                    name: String,
                    value: String,
                }
                let mut out = Vec::new();
                while let Some(e) = s.next_element::<Entry>()? {
                    out.push((e.name, e.value));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsFile {
    text: String,
    #[serde(default)]
    sign_name: Option<String>,
    #[serde(default)]
    params: Ordered,
    #[serde(default)]
    providers: BTreeMap<String, SmsProvider>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsProvider {
    template_id: Option<String>,
    template_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WechatFile {
    template_id: String,
    #[serde(default)]
    url: Option<String>,
    data: Ordered,
}

/// `email.toml`: settings of a template's e-mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailFile {
    #[serde(default)]
    attach_letter: bool,
}

#[derive(Debug)]
struct SmsTemplate {
    text: String,
    sign_name: Option<String>,
    /// Param names in file order; each value is the text template `<name>/sms.param.<param>`.
    params: Vec<String>,
    template_ids: BTreeMap<String, String>,
}

#[derive(Debug)]
struct WechatTemplate {
    template_id: String,
    has_url: bool,
    keys: Vec<String>,
}

#[derive(Debug, Default)]
struct TemplateSet {
    website: bool,
    intranet: bool,
    email: bool,
    wecom: bool,
    letter: bool,
    attach_letter: bool,
    sms: Option<SmsTemplate>,
    wechat: Option<WechatTemplate>,
}

/// Every notice template, compiled.
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    sets: BTreeMap<String, TemplateSet>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.sets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `eq` that, unlike the built-in, reports a missing operand by its path in strict mode:
/// `(eq recipient.role "x")` on a publication channel must fail, naming `recipient.role`.
struct StrictEq;

impl HelperDef for StrictEq {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, handlebars::RenderError> {
        let a = strict_param(h, 0)?;
        let b = strict_param(h, 1)?;
        Ok(ScopedJson::Derived(Value::Bool(a == b)))
    }
}

fn strict_param<'a>(h: &'a Helper<'_>, i: usize) -> Result<&'a Value, handlebars::RenderError> {
    let p = h.param(i).ok_or_else(|| {
        RenderErrorReason::Other(format!("helper {} needs parameter {}", h.name(), i + 1))
    })?;
    if p.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(
            p.relative_path()
                .cloned()
                .or_else(|| Some(format!("parameter {}", i + 1))),
        )
        .into());
    }
    Ok(p.value())
}

fn fail_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    _: &mut dyn Output,
) -> handlebars::HelperResult {
    let msg = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .unwrap_or("the template refuses this case");
    Err(RenderErrorReason::Other(msg.to_string()).into())
}

/// `{{paragraphs data.body}}`: each non-empty line as an escaped `<p>`.
fn paragraphs_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> handlebars::HelperResult {
    let v = strict_param(h, 0)?;
    let text = v.as_str().ok_or_else(|| {
        RenderErrorReason::Other("paragraphs: the parameter must be a string".into())
    })?;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.write("<p>")?;
        out.write(&handlebars::html_escape(line))?;
        out.write("</p>\n")?;
    }
    Ok(())
}

fn registry(html: bool) -> Handlebars<'static> {
    let mut r = Handlebars::new();
    r.set_strict_mode(true);
    if !html {
        r.register_escape_fn(handlebars::no_escape);
    }
    r.register_helper("eq", Box::new(StrictEq));
    r.register_helper("fail", Box::new(fail_helper));
    if html {
        r.register_helper("paragraphs", Box::new(paragraphs_helper));
    }
    r
}

/// Which registry a `.hbs` file belongs to and its registered name suffix.
const HBS_FILES: [(&str, bool); 7] = [
    ("website.html.hbs", true),
    ("intranet.html.hbs", true),
    ("email.subject.hbs", false),
    ("email.txt.hbs", false),
    ("email.html.hbs", true),
    ("wecom.md.hbs", false),
    ("letter.html.hbs", true),
];

/// Tags a letter body may use: GB/T 9704 body text has four heading levels and paragraphs.
const LETTER_TAGS: [&str; 6] = ["h2", "h3", "h4", "h5", "p", "br"];

fn check_html_source(path: &Path, src: &str, letter: bool) -> Result<(), RenderError> {
    if src.contains("{{{") || src.contains("{{&") || src.contains("{{~{") {
        return Err(load_err(
            path,
            "unescaped output ({{{…}}} or {{&…}}) is not allowed in an HTML template: job data is untrusted",
        ));
    }
    if letter {
        let mut rest = src;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let name: String = rest
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if !name.is_empty() && !LETTER_TAGS.contains(&name.as_str()) {
                return Err(load_err(
                    path,
                    format!(
                        "<{name}> is not allowed in a letter body (only h2, h3, h4, h5, p, br)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, RenderError> {
    std::fs::read_to_string(path).map_err(|e| load_err(path, e.to_string()))
}

impl Templates {
    /// Compile every template under `dir` (one folder per notice). Fails on the first file that
    /// does not compile or does not fit the layout, naming it.
    pub fn load(dir: &Path) -> Result<Templates, RenderError> {
        let mut t = Templates {
            html: registry(true),
            text: registry(false),
            sets: BTreeMap::new(),
        };
        let entries = std::fs::read_dir(dir).map_err(|e| load_err(dir, e.to_string()))?;
        let mut folders = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| load_err(dir, e.to_string()))?;
            if entry.path().is_dir() {
                folders.push(entry.path());
            }
        }
        folders.sort();
        for folder in folders {
            let name = folder
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with('.') {
                continue;
            }
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(load_err(
                    &folder,
                    "a template folder name must be of [A-Za-z0-9_-] (it is the job's `template`)",
                ));
            }
            let set = t.load_set(&name, &folder)?;
            t.sets.insert(name, set);
        }
        Ok(t)
    }

    fn load_set(&mut self, name: &str, folder: &Path) -> Result<TemplateSet, RenderError> {
        let mut set = TemplateSet::default();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(folder).map_err(|e| load_err(folder, e.to_string()))? {
            let entry = entry.map_err(|e| load_err(folder, e.to_string()))?;
            files.push(entry.path());
        }
        files.sort();
        let mut email_parts = BTreeSet::new();
        for path in files {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if file.starts_with('.') || !(file.ends_with(".hbs") || file.ends_with(".toml")) {
                continue; // READMEs, editor files
            }
            if let Some((_, html)) = HBS_FILES.iter().find(|(f, _)| *f == file) {
                let src = read(&path)?;
                if *html {
                    check_html_source(&path, &src, file == "letter.html.hbs")?;
                }
                let reg = if *html {
                    &mut self.html
                } else {
                    &mut self.text
                };
                reg.register_template_string(&format!("{name}/{file}"), &src)
                    .map_err(|e| load_err(&path, e.to_string()))?;
                match file.as_str() {
                    "website.html.hbs" => set.website = true,
                    "intranet.html.hbs" => set.intranet = true,
                    "wecom.md.hbs" => set.wecom = true,
                    "letter.html.hbs" => set.letter = true,
                    _ => {
                        email_parts.insert(file);
                    }
                }
            } else if file == "sms.toml" {
                set.sms = Some(self.load_sms(name, &path)?);
            } else if file == "wechat.toml" {
                set.wechat = Some(self.load_wechat(name, &path)?);
            } else if file == "email.toml" {
                let f: EmailFile =
                    toml::from_str(&read(&path)?).map_err(|e| load_err(&path, e.to_string()))?;
                set.attach_letter = f.attach_letter;
            } else {
                return Err(load_err(
                    &path,
                    "unknown template file; expected one of website.html.hbs, intranet.html.hbs, \
                     email.subject.hbs, email.txt.hbs, email.html.hbs, email.toml, sms.toml, wechat.toml, \
                     wecom.md.hbs, letter.html.hbs",
                ));
            }
        }
        if !email_parts.is_empty() {
            for part in ["email.subject.hbs", "email.txt.hbs", "email.html.hbs"] {
                if !email_parts.contains(part) {
                    return Err(load_err(
                        &folder.join(part),
                        "missing: an e-mail needs email.subject.hbs, email.txt.hbs and email.html.hbs",
                    ));
                }
            }
            set.email = true;
        }
        if set.attach_letter && !(set.email && set.letter) {
            return Err(load_err(
                &folder.join("email.toml"),
                "attach_letter needs the e-mail files and letter.html.hbs in the same folder",
            ));
        }
        Ok(set)
    }

    fn load_sms(&mut self, name: &str, path: &Path) -> Result<SmsTemplate, RenderError> {
        let f: SmsFile = toml::from_str(&read(path)?).map_err(|e| load_err(path, e.to_string()))?;
        let pieces = parse_placeholders(&f.text).map_err(|e| load_err(path, e))?;
        let mut params = Vec::new();
        for (param, value) in &f.params.0 {
            if params.contains(param) {
                return Err(load_err(path, format!("param {param:?} is given twice")));
            }
            self.text
                .register_template_string(&format!("{name}/sms.param.{param}"), value)
                .map_err(|e| load_err(path, format!("param {param:?}: {e}")))?;
            params.push(param.clone());
        }
        let used: BTreeSet<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(v.as_str()),
                Piece::Lit(_) => None,
            })
            .collect();
        for v in &used {
            if !params.iter().any(|p| p == v) {
                return Err(load_err(
                    path,
                    format!("text uses ${{{v}}} but [params] has no {v:?}"),
                ));
            }
        }
        for p in &params {
            if !used.contains(p.as_str()) {
                return Err(load_err(
                    path,
                    format!(
                        "param {p:?} is not used in text (Tencent requires as many parameters as placeholders)"
                    ),
                ));
            }
        }
        if let Some(sign) = &f.sign_name
            && (sign.trim().is_empty() || sign.contains(['【', '】']))
        {
            return Err(load_err(
                path,
                "sign_name must be the approved signature without 【】",
            ));
        }
        let mut template_ids = BTreeMap::new();
        for (provider, p) in f.providers {
            let id = match (p.template_id, p.template_code) {
                (Some(id), None) | (None, Some(id)) if !id.trim().is_empty() => id,
                _ => {
                    return Err(load_err(
                        path,
                        format!(
                            "[providers.{provider}] needs exactly one of template_id (Tencent) or template_code (Alibaba)"
                        ),
                    ));
                }
            };
            template_ids.insert(provider, id);
        }
        if template_ids.is_empty() {
            return Err(load_err(
                path,
                "no [providers.<name>] template id: mainland SMS can only be sent with a registered template",
            ));
        }
        Ok(SmsTemplate {
            text: f.text,
            sign_name: f.sign_name,
            params,
            template_ids,
        })
    }

    fn load_wechat(&mut self, name: &str, path: &Path) -> Result<WechatTemplate, RenderError> {
        let f: WechatFile =
            toml::from_str(&read(path)?).map_err(|e| load_err(path, e.to_string()))?;
        if f.template_id.trim().is_empty() {
            return Err(load_err(path, "template_id must not be empty"));
        }
        if let Some(url) = &f.url {
            self.text
                .register_template_string(&format!("{name}/wechat.url"), url)
                .map_err(|e| load_err(path, format!("url: {e}")))?;
        }
        let mut keys = Vec::new();
        for (key, value) in &f.data.0 {
            self.text
                .register_template_string(&format!("{name}/wechat.data.{key}"), value)
                .map_err(|e| load_err(path, format!("data.{key}: {e}")))?;
            keys.push(key.clone());
        }
        if keys.is_empty() {
            return Err(load_err(path, "[data] must name at least one field"));
        }
        Ok(WechatTemplate {
            template_id: f.template_id,
            has_url: f.url.is_some(),
            keys,
        })
    }

    /// Template names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.sets.keys().cloned().collect()
    }

    /// Whether `template` has a file for `channel` (intranet counts the website fallback).
    pub fn has(&self, template: &str, channel: ChannelKind) -> bool {
        let Some(s) = self.sets.get(template) else {
            return false;
        };
        match channel {
            ChannelKind::Website => s.website,
            ChannelKind::Intranet => s.intranet || s.website,
            ChannelKind::Wechat => s.wechat.is_some(),
            ChannelKind::Sms => s.sms.is_some(),
            ChannelKind::Email => s.email,
            ChannelKind::Wecom => s.wecom,
            ChannelKind::Letter => s.letter,
        }
    }

    /// Email and letter address one person; the others publish or broadcast one text.
    pub fn is_personal(channel: ChannelKind) -> bool {
        matches!(channel, ChannelKind::Email | ChannelKind::Letter)
    }

    /// Channels for which the job's template lacks a file, and strict-render failures (missing
    /// variables), one message each; empty = fine. Personal channels (email, letter) are
    /// test-rendered with each named recipient of the job, or a placeholder recipient when none.
    pub fn check(&self, job: &Job, channels: &[ChannelKind]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if !self.sets.contains_key(&job.template) {
            out.push(
                RenderError::UnknownTemplate {
                    template: job.template.clone(),
                }
                .to_string(),
            );
            return out;
        }
        if let (Some(c), Some(Value::String(d))) = (&job.complaint, job.data.get("case_no"))
            && &c.case_no != d
        {
            out.push(format!(
                "data.case_no {d:?} differs from complaint.case_no {:?}",
                c.case_no
            ));
        }
        for &channel in channels {
            let recipients: Vec<Option<RecipientView>> = if !Templates::is_personal(channel) {
                vec![None]
            } else if job.audience.recipients.is_empty() {
                vec![Some(RecipientView {
                    id: "placeholder".into(),
                    name: "（收件人）".into(),
                    role: "recipient".into(),
                })]
            } else {
                job.audience
                    .recipients
                    .iter()
                    .map(|r| {
                        Some(RecipientView {
                            id: r.id.clone(),
                            name: r.name.clone(),
                            role: r.role.clone(),
                        })
                    })
                    .collect()
            };
            for r in &recipients {
                if let Err(e) = self.render(job, channel, r.as_ref()) {
                    let mut msg = e.to_string();
                    if let Some(r) = r.as_ref().filter(|r| r.id != "placeholder") {
                        msg.push_str(&format!(" (recipient {}, role {})", r.id, r.role));
                    }
                    if !out.iter().any(|m| m.starts_with(&e.to_string())) {
                        out.push(msg);
                    }
                    if matches!(e, RenderError::MissingChannel { .. }) {
                        break;
                    }
                }
            }
        }
        out
    }

    /// Render `job` for `channel`. `recipient` is used only by personal channels.
    pub fn render(
        &self,
        job: &Job,
        channel: ChannelKind,
        recipient: Option<&RecipientView>,
    ) -> Result<Rendered, RenderError> {
        let name = job.template.as_str();
        let set = self
            .sets
            .get(name)
            .ok_or_else(|| RenderError::UnknownTemplate {
                template: name.to_string(),
            })?;
        if job.kind == crate::job::Kind::Retraction
            && channel.is_publication()
            && !self.has(name, channel)
        {
            // A retraction withdraws the page, and the site writes the withdrawal notice itself:
            // nothing of the template is shown, so (as intake already allows) it needs no page file.
            return Ok(Rendered::Page {
                title: job.title.clone(),
                html: String::new(),
            });
        }
        if !self.has(name, channel) {
            return Err(RenderError::MissingChannel {
                template: name.to_string(),
                channel,
            });
        }
        let ctx = context(
            job,
            Templates::is_personal(channel)
                .then_some(recipient)
                .flatten(),
        );
        let html = |file: &str| self.run(&self.html, name, channel, file, &ctx);
        let text = |file: &str| self.run(&self.text, name, channel, file, &ctx);
        Ok(match channel {
            ChannelKind::Website => Rendered::Page {
                title: job.title.clone(),
                html: html("website.html.hbs")?,
            },
            ChannelKind::Intranet => Rendered::Page {
                title: job.title.clone(),
                html: html(if set.intranet {
                    "intranet.html.hbs"
                } else {
                    "website.html.hbs"
                })?,
            },
            ChannelKind::Email => Rendered::Email {
                // A subject is one line whatever the title holds.
                subject: text("email.subject.hbs")?
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                text: text("email.txt.hbs")?,
                html: html("email.html.hbs")?,
                letter: if set.attach_letter {
                    Some(html("letter.html.hbs")?)
                } else {
                    None
                },
            },
            ChannelKind::Wecom => Rendered::Wecom {
                markdown: text("wecom.md.hbs")?,
            },
            ChannelKind::Letter => Rendered::Letter {
                html: html("letter.html.hbs")?,
            },
            ChannelKind::Sms => {
                let sms = set.sms.as_ref().expect("has() checked");
                let mut params = Vec::new();
                for p in &sms.params {
                    let v = self.run(&self.text, name, channel, &format!("sms.param.{p}"), &ctx)?;
                    params.push((p.clone(), v));
                }
                let chars = sms_expand(sms.sign_name.as_deref(), &sms.text, &params)
                    .chars()
                    .count();
                if chars > SMS_MAX_CHARS {
                    return Err(RenderError::Failed {
                        template: name.to_string(),
                        channel,
                        file: "sms.toml".into(),
                        message: format!(
                            "the SMS would be {chars} characters; providers accept at most {SMS_MAX_CHARS}"
                        ),
                    });
                }
                Rendered::Sms {
                    text: sms.text.clone(),
                    sign_name: sms.sign_name.clone(),
                    params,
                    template_ids: sms.template_ids.clone(),
                    chars,
                    segments: sms_segments(chars),
                }
            }
            ChannelKind::Wechat => {
                let w = set.wechat.as_ref().expect("has() checked");
                let url = if w.has_url {
                    Some(self.run(&self.text, name, channel, "wechat.url", &ctx)?)
                        .map(|u| u.trim().to_string())
                        .filter(|u| !u.is_empty())
                } else {
                    None
                };
                let mut data = Vec::new();
                for k in &w.keys {
                    let v =
                        self.run(&self.text, name, channel, &format!("wechat.data.{k}"), &ctx)?;
                    data.push((k.clone(), v));
                }
                Rendered::Wechat {
                    template_id: w.template_id.clone(),
                    url,
                    data,
                }
            }
        })
    }

    fn run(
        &self,
        reg: &Handlebars<'static>,
        template: &str,
        channel: ChannelKind,
        file: &str,
        ctx: &Value,
    ) -> Result<String, RenderError> {
        reg.render(&format!("{template}/{file}"), ctx).map_err(|e| {
            let file = match e.line_no {
                Some(line) => format!("{file}:{line}"),
                None => file.to_string(),
            };
            match e.reason() {
                RenderErrorReason::MissingVariable(v) => RenderError::MissingVariable {
                    template: template.to_string(),
                    channel,
                    file,
                    variable: v.clone().unwrap_or_else(|| "(unnamed)".into()),
                },
                reason => RenderError::Failed {
                    template: template.to_string(),
                    channel,
                    file,
                    message: reason.to_string(),
                },
            }
        })
    }
}

/// `2026年12月1日`
fn zh_date(t: &DateTime<FixedOffset>) -> String {
    format!("{}年{}月{}日", t.year(), t.month(), t.day())
}

/// `2026年12月1日 09:00`
fn zh_date_time(t: &DateTime<FixedOffset>) -> String {
    format!("{} {:02}:{:02}", zh_date(t), t.hour(), t.minute())
}

/// The render context documented in the module doc.
fn context(job: &Job, recipient: Option<&RecipientView>) -> Value {
    let mut c = Map::new();
    c.insert("id".into(), job.id.clone().into());
    c.insert(
        "kind".into(),
        serde_json::to_value(job.kind).unwrap_or(Value::Null),
    );
    c.insert("title".into(), job.title.clone().into());
    c.insert("category".into(), job.category.to_string().into());
    c.insert("scope".into(), job.scope.as_str().into());
    if let Some(corrects) = &job.corrects {
        c.insert("corrects".into(), corrects.clone().into());
    }
    c.insert("data".into(), Value::Object(job.data.clone()));
    if let Some(r) = recipient {
        c.insert(
            "recipient".into(),
            serde_json::json!({"id": r.id, "name": r.name, "role": r.role}),
        );
    }
    c.insert(
        "approval".into(),
        serde_json::json!({
            "approver": job.approval.approver,
            "reference": job.approval.reference,
            "approved_at": zh_date(&job.approval.approved_at),
        }),
    );
    let mut s = Map::new();
    if let Some(t) = &job.schedule.publish_at {
        s.insert("publish_at".into(), zh_date(t).into());
        s.insert("publish_at_time".into(), zh_date_time(t).into());
    }
    if let Some(t) = &job.schedule.expires_at {
        s.insert("expires_at".into(), zh_date(t).into());
        s.insert("expires_at_time".into(), zh_date_time(t).into());
    }
    c.insert("schedule".into(), Value::Object(s));
    let publish = job.schedule.publish_at.unwrap_or(job.approval.approved_at);
    c.insert("publish_date".into(), zh_date(&publish).into());
    if let Some(complaint) = &job.complaint {
        c.insert("case_no".into(), complaint.case_no.clone().into());
    } else if let Some(Value::String(n)) = job.data.get("case_no") {
        c.insert("case_no".into(), n.clone().into());
    }
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn shipped() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap()
    }

    /// A job for `template` with `data`, parsed through the real envelope parser.
    fn job(template: &str, data: Value) -> Job {
        let v = serde_json::json!({
            "id": "zzb-2026-0142",
            "kind": "release",
            "category": "6.3",
            "scope": "public",
            "classification": "none",
            "title": "关于张三同志任职前公示的公告",
            "template": template,
            "data": data,
            "schedule": {"publish_at": "2026-12-01T09:00:00+08:00", "expires_at": "2026-12-08T18:00:00+08:00"},
            "approval": {"approver": "李四", "reference": "组干审〔2026〕12号",
                         "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "approval-2026"}
        });
        crate::job::parse(v.to_string().as_bytes()).unwrap().job
    }

    fn pre_appointment() -> Job {
        job(
            "pre_appointment_notice",
            serde_json::json!({
                "candidates": [
                    {"name": "张三", "current_post": "县财政局副局长", "proposed_post": "县财政局局长"},
                    {"name": "王芳", "current_post": "县教育局副局长", "proposed_post": "县教育局局长"}
                ],
                "report_phone": "0000-12380",
                "report_address": "县委组织部干部监督室"
            }),
        )
    }

    fn investigation(roles: &[(&str, &str)]) -> Job {
        let recipients: Vec<Value> = roles
            .iter()
            .map(|(id, role)| serde_json::json!({"id": id, "name": format!("{id}姓名"), "role": role}))
            .collect();
        let v = serde_json::json!({
            "id": "zzb-2026-0200", "kind": "notice", "category": "9.5", "scope": "specific",
            "classification": "none", "title": "关于反映问题调查结果的函",
            "template": "investigation_result",
            "data": {"case_no": "JD-2026-007", "summary": "经调阅档案、个别谈话，反映问题不属实。", "conclusion": "反映问题不属实，予以了结。"},
            "channels": ["letter"],
            "audience": {"recipients": recipients},
            "complaint": {"signed": true, "case_no": "JD-2026-007"},
            "approval": {"approver": "李四", "reference": "组干审〔2026〕20号",
                         "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "approval-2026"}
        });
        crate::job::parse(v.to_string().as_bytes()).unwrap().job
    }

    fn person(id: &str, role: &str) -> RecipientView {
        RecipientView {
            id: id.into(),
            name: "王五".into(),
            role: role.into(),
        }
    }

    /// A fresh directory under the system temp dir holding `files` (`folder/file`, contents).
    fn temp_templates(files: &[(&str, &str)]) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "disclose-render-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn every_shipped_template_loads_and_renders_its_channels() {
        let t = shipped();
        assert_eq!(
            t.names(),
            [
                "correction_notice",
                "general",
                "investigation_result",
                "pre_appointment_notice"
            ]
        );
        let cases = [
            (
                job("general", serde_json::json!({"body": "第一段。\n第二段。"})),
                ChannelKind::ALL.to_vec(),
            ),
            (
                job(
                    "correction_notice",
                    serde_json::json!({"original_title": "关于张三同志任职前公示的公告", "correction": "“县财政局局长”应为“县财政局副局长”。"}),
                ),
                ChannelKind::ALL.to_vec(),
            ),
            (
                pre_appointment(),
                vec![
                    ChannelKind::Website,
                    ChannelKind::Intranet,
                    ChannelKind::Wechat,
                    ChannelKind::Sms,
                    ChannelKind::Email,
                ],
            ),
            (
                investigation(&[("r1", "reported"), ("c1", "complainant")]),
                vec![ChannelKind::Letter],
            ),
        ];
        for (job, channels) in cases {
            for &c in &channels {
                assert!(t.has(&job.template, c), "{} lacks {c}", job.template);
            }
            assert_eq!(
                t.check(&job, &channels),
                Vec::<String>::new(),
                "{}",
                job.template
            );
        }
    }

    #[test]
    fn the_pre_appointment_notice_says_who_when_and_where_to_report() {
        let t = shipped();
        let j = pre_appointment();
        let Rendered::Page { title, html } = t.render(&j, ChannelKind::Website, None).unwrap()
        else {
            panic!("website renders a page")
        };
        assert_eq!(title, "关于张三同志任职前公示的公告");
        for needle in [
            "<td>张三</td><td>县财政局副局长</td><td>县财政局局长</td>",
            "<td>王芳</td>",
            "公示期：2026年12月1日至2026年12月8日",
            "0000-12380",
            "县委组织部干部监督室",
            "12380",
        ] {
            assert!(html.contains(needle), "{needle} not in {html}");
        }
        let sms = t.render(&j, ChannelKind::Sms, None).unwrap();
        let Rendered::Sms {
            params,
            template_ids,
            ..
        } = &sms
        else {
            panic!()
        };
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["title", "until", "phone"],
            "file order kept for Tencent"
        );
        assert_eq!(params[1].1, "2026年12月8日");
        assert_eq!(template_ids["tencent"], "1234568");
        assert_eq!(template_ids["aliyun"], "SMS_000000002");
        assert!(sms.preview().starts_with(
            "【某县组工】县委组织部公示：关于张三同志任职前公示的公告，公示期至2026年12月8日。举报电话0000-12380，"
        ), "{}", sms.preview());
        let wechat = t.render(&j, ChannelKind::Wechat, None).unwrap();
        assert_eq!(
            wechat.preview(),
            "keyword1: 关于张三同志任职前公示的公告\nkeyword2: 2026年12月1日至2026年12月8日\nkeyword3: 0000-12380"
        );
    }

    #[test]
    fn the_general_sms_carries_the_title_and_points_to_the_website() {
        let t = shipped();
        let r = t
            .render(
                &job("general", serde_json::json!({"body": "x"})),
                ChannelKind::Sms,
                None,
            )
            .unwrap();
        let p = r.preview();
        assert!(
            p.contains("关于张三同志任职前公示的公告") && p.contains("详见县委组织部网站"),
            "{p}"
        );
    }

    #[test]
    fn html_channels_escape_data() {
        let t = shipped();
        let mut j = job(
            "general",
            serde_json::json!({"body": "<script>alert(1)</script>"}),
        );
        j.title = "<b>标题</b>".into();
        let me = person("r1", "member");
        for (c, r) in [
            (ChannelKind::Website, None),
            (ChannelKind::Intranet, None),
            (ChannelKind::Email, Some(&me)),
            (ChannelKind::Letter, Some(&me)),
        ] {
            let html = match t.render(&j, c, r).unwrap() {
                Rendered::Page { html, .. } | Rendered::Letter { html } => html,
                Rendered::Email { html, .. } => {
                    assert!(html.contains("&lt;b&gt;标题&lt;/b&gt;"), "{html}");
                    html
                }
                other => panic!("{other:?}"),
            };
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{c}: {html}"
            );
            assert!(
                !html.contains("<script>") && !html.contains("<b>"),
                "{c}: {html}"
            );
        }
    }

    #[test]
    fn text_channels_do_not_escape_data() {
        let t = shipped();
        let mut j = job("general", serde_json::json!({"body": "A&B=C <x> \"q\""}));
        j.title = "A&B=C".into();
        let sms = t.render(&j, ChannelKind::Sms, None).unwrap();
        assert!(sms.preview().contains("：A&B=C。"), "{}", sms.preview());
        let Rendered::Sms { params, .. } = &sms else {
            panic!()
        };
        assert_eq!(params[0].1, "A&B=C");
        let wechat = t.render(&j, ChannelKind::Wechat, None).unwrap();
        assert!(
            wechat.preview().contains("keyword1: A&B=C\n"),
            "{}",
            wechat.preview()
        );
        let wecom = t.render(&j, ChannelKind::Wecom, None).unwrap();
        assert!(
            wecom.preview().contains("A&B=C <x> \"q\""),
            "{}",
            wecom.preview()
        );
        let me = person("r1", "member");
        let Rendered::Email {
            subject,
            text,
            html,
            ..
        } = t.render(&j, ChannelKind::Email, Some(&me)).unwrap()
        else {
            panic!()
        };
        assert_eq!(subject, "A&B=C");
        assert!(text.contains("A&B=C <x> \"q\""), "{text}");
        assert!(
            html.contains("A&amp;B&#x3D;C") || html.contains("A&amp;B=C"),
            "{html}"
        );
    }

    #[test]
    fn template_syntax_in_data_stays_literal() {
        let t = shipped();
        let mut j = job(
            "general",
            serde_json::json!({"body": "{{approval.approver}} {{> x}} ${title}"}),
        );
        j.title = "{{id}} ${title}".into();
        let Rendered::Page { html, .. } = t.render(&j, ChannelKind::Website, None).unwrap() else {
            panic!()
        };
        assert!(
            html.contains("{{approval.approver}} {{&gt; x}} ${title}"),
            "{html}"
        );
        assert!(!html.contains("李四"));
        let sms = t.render(&j, ChannelKind::Sms, None).unwrap().preview();
        // One-pass substitution: the value's own ${title} is not expanded again.
        assert!(sms.contains("发布：{{id}} ${title}。详见"), "{sms}");
        let wecom = t.render(&j, ChannelKind::Wecom, None).unwrap().preview();
        assert!(
            wecom.contains("{{approval.approver}}") && !wecom.contains("李四"),
            "{wecom}"
        );
    }

    #[test]
    fn strict_mode_names_the_missing_variable() {
        let t = shipped();
        let j = job("general", serde_json::json!({"text": "typo"}));
        let e = t.render(&j, ChannelKind::Website, None).unwrap_err();
        assert!(
            matches!(&e, RenderError::MissingVariable { variable, channel: ChannelKind::Website, template, .. }
                if variable == "data.body" && template == "general"),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("data.body") && msg.contains("general") && msg.contains("website"),
            "{msg}"
        );
        // Through an SMS parameter and a missing schedule date, too.
        let e = t.render(&j, ChannelKind::Wecom, None).unwrap_err();
        assert!(e.to_string().contains("data.body"), "{e}");
        let mut j = pre_appointment();
        j.schedule.expires_at = None;
        let e = t.render(&j, ChannelKind::Sms, None).unwrap_err();
        assert!(
            e.to_string().contains("schedule.expires_at") && e.to_string().contains("sms"),
            "{e}"
        );
    }

    #[test]
    fn a_publication_template_cannot_name_a_recipient() {
        let dir = temp_templates(&[
            ("t/website.html.hbs", "<p>{{recipient.name}}</p>"),
            (
                "t/wecom.md.hbs",
                "{{#if (eq recipient.role \"x\")}}a{{/if}}",
            ),
        ]);
        let t = Templates::load(&dir).unwrap();
        let j = job("t", serde_json::json!({}));
        let me = person("r1", "member");
        // The recipient is not in the context of a publication, even when one is passed.
        let e = t.render(&j, ChannelKind::Website, Some(&me)).unwrap_err();
        assert!(
            matches!(&e, RenderError::MissingVariable { variable, .. } if variable == "recipient.name"),
            "{e:?}"
        );
        let e = t.render(&j, ChannelKind::Wecom, None).unwrap_err();
        assert!(
            matches!(&e, RenderError::MissingVariable { variable, .. } if variable == "recipient.role"),
            "{e:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn check_reports_missing_channel_files_and_failures() {
        let t = shipped();
        let j = investigation(&[("r1", "reported")]);
        let msgs = t.check(
            &j,
            &[ChannelKind::Letter, ChannelKind::Sms, ChannelKind::Website],
        );
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0].contains("sms") && msgs[0].contains("investigation_result"),
            "{msgs:?}"
        );
        assert!(msgs[1].contains("website"), "{msgs:?}");
        // A letter to a role the template has no wording for is reported with the recipient.
        let j = investigation(&[("r1", "reported"), ("m1", "member")]);
        let msgs = t.check(&j, &[ChannelKind::Letter]);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].contains("m1") && msgs[0].contains("letter"),
            "{msgs:?}"
        );
        // Unknown template.
        let mut j = job("general", serde_json::json!({"body": "x"}));
        j.template = "nope".into();
        assert!(t.check(&j, &[ChannelKind::Website])[0].contains("nope"));
        // Art 3 (accuracy): the case number in the data must be the complaint's.
        let mut j = investigation(&[("r1", "reported")]);
        j.data.insert("case_no".into(), "JD-2026-999".into());
        let msgs = t.check(&j, &[ChannelKind::Letter]);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].contains("JD-2026-999") && msgs[0].contains("JD-2026-007"),
            "{msgs:?}"
        );
        // Missing data reported once per channel, not once per recipient.
        let mut j = investigation(&[("r1", "reported"), ("c1", "complainant")]);
        j.data.remove("summary");
        let msgs = t.check(&j, &[ChannelKind::Letter]);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("data.summary"), "{msgs:?}");
    }

    #[test]
    fn the_investigation_letter_speaks_to_each_party_in_its_own_words() {
        let t = shipped();
        let j = investigation(&[("r1", "reported"), ("c1", "complainant")]);
        let letter = |role: &str| match t.render(&j, ChannelKind::Letter, Some(&person("x", role)))
        {
            Ok(Rendered::Letter { html }) => Ok(html),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let reported = letter("reported").unwrap();
        let complainant = letter("complainant").unwrap();
        assert!(
            reported.contains("现将你被反映问题的调查结果告知如下"),
            "{reported}"
        );
        assert!(!reported.contains("署名反映"), "{reported}");
        assert!(
            complainant.contains("你署名反映的有关问题"),
            "{complainant}"
        );
        assert!(
            complainant.contains("现将调查结果反馈如下"),
            "{complainant}"
        );
        assert!(!complainant.contains("你被反映问题"), "{complainant}");
        for html in [&reported, &complainant] {
            assert!(
                html.contains("JD-2026-007") && html.contains("<h2>一、调查核实情况</h2>"),
                "{html}"
            );
            assert!(html.contains("<p>反映问题不属实，予以了结。</p>"), "{html}");
        }
        let e = letter("member").unwrap_err();
        assert!(e.to_string().contains("only to the reported person"), "{e}");
        // Without a recipient, strict mode names what is missing.
        let e = t.render(&j, ChannelKind::Letter, None).unwrap_err();
        assert!(
            matches!(&e, RenderError::MissingVariable { variable, .. } if variable == "recipient.role"),
            "{e:?}"
        );
    }

    fn sms_dir(sign: Option<&str>) -> (PathBuf, Templates) {
        let sign = sign
            .map(|s| format!("sign_name = \"{s}\"\n"))
            .unwrap_or_default();
        let dir = temp_templates(&[(
            "t/sms.toml",
            &format!(
                "text = \"${{x}}\"\n{sign}[params]\nx = \"{{{{data.s}}}}\"\n[providers.tencent]\ntemplate_id = \"1\"\n"
            ),
        )]);
        let t = Templates::load(&dir).unwrap();
        (dir, t)
    }

    #[test]
    fn sms_length_and_segments_follow_70_and_67() {
        let (dir, t) = sms_dir(None);
        for (len, segments) in [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (500, 8)] {
            // Chinese, letters, digits and punctuation all count 1.
            let s: String = "组A1，".chars().cycle().take(len).collect();
            let r = t
                .render(
                    &job("t", serde_json::json!({"s": s})),
                    ChannelKind::Sms,
                    None,
                )
                .unwrap();
            let Rendered::Sms {
                chars,
                segments: got,
                ..
            } = &r
            else {
                panic!()
            };
            assert_eq!((*chars, *got), (len, segments), "{len}");
            assert!(
                r.preview()
                    .ends_with(&format!(" ({len} chars, {segments} segments)")),
                "{}",
                r.preview()
            );
        }
        let s: String = "组".repeat(501);
        let e = t
            .render(
                &job("t", serde_json::json!({"s": s})),
                ChannelKind::Sms,
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains("501"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
        // The 【sign】 counts: 2 + 2 brackets + 66 = 70 is still one segment, 67 makes two.
        let (dir, t) = sms_dir(Some("组工"));
        for (len, segments) in [(66, 1), (67, 2)] {
            let s = "字".repeat(len);
            let r = t
                .render(
                    &job("t", serde_json::json!({"s": s})),
                    ChannelKind::Sms,
                    None,
                )
                .unwrap();
            assert!(r.preview().starts_with("【组工】字"), "{}", r.preview());
            let Rendered::Sms {
                chars,
                segments: got,
                ..
            } = r
            else {
                panic!()
            };
            assert_eq!((chars, got), (len + 4, segments));
        }
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(sms_segments(160), 3, "providers.md: 160 → 67+67+26");
    }

    #[test]
    fn sms_params_keep_file_order_in_either_form() {
        let dir = temp_templates(&[
            (
                "a/sms.toml",
                "text = \"${zeta}${alpha}\"\n[params]\nzeta = \"z\"\nalpha = \"a\"\n[providers.aliyun]\ntemplate_code = \"SMS_1\"\n",
            ),
            (
                "b/sms.toml",
                "text = \"${zeta}${alpha}\"\nparams = [{ name = \"zeta\", value = \"z\" }, { name = \"alpha\", value = \"a\" }]\n[providers.aliyun]\ntemplate_code = \"SMS_1\"\n",
            ),
        ]);
        let t = Templates::load(&dir).unwrap();
        for name in ["a", "b"] {
            let Rendered::Sms { params, .. } = t
                .render(&job(name, serde_json::json!({})), ChannelKind::Sms, None)
                .unwrap()
            else {
                panic!()
            };
            assert_eq!(
                params,
                [("zeta".into(), "z".into()), ("alpha".into(), "a".into())],
                "{name}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_template_files_fail_loading_naming_the_file() {
        let sms_ok_tail = "[providers.tencent]\ntemplate_id = \"1\"\n";
        // (files, the file the error must name, a detail it must mention)
        type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (
                vec![("t/website.html.hbs", "{{#if data.x}}unclosed".into())],
                "website.html.hbs",
                "",
            ),
            (
                vec![("t/email.subject.hbs", "{{title}".into())],
                "email.subject.hbs",
                "",
            ),
            (
                vec![(
                    "t/sms.toml",
                    format!("text = \"${{a}}${{b}}\"\n[params]\na = \"x\"\n{sms_ok_tail}"),
                )],
                "sms.toml",
                "${b}",
            ),
            (
                vec![(
                    "t/sms.toml",
                    format!("text = \"${{a}}\"\n[params]\na = \"x\"\nb = \"y\"\n{sms_ok_tail}"),
                )],
                "sms.toml",
                "\"b\"",
            ),
            (
                vec![(
                    "t/sms.toml",
                    "text = \"${a}\"\n[params]\na = \"x\"\n".into(),
                )],
                "sms.toml",
                "providers",
            ),
            (
                vec![(
                    "t/sms.toml",
                    format!("text = \"x\"\n[params]\n{sms_ok_tail}\ncolour = 1\n"),
                )],
                "sms.toml",
                "",
            ),
            (
                vec![(
                    "t/wechat.toml",
                    "template_id = \"x\"\n[data]\nk = \"{{#each}}\"\n".into(),
                )],
                "wechat.toml",
                "data.k",
            ),
            (
                vec![("t/website.html.hbs", "{{{data.body}}}".into())],
                "website.html.hbs",
                "unescaped",
            ),
            (
                vec![("t/letter.html.hbs", "<script>{{data.x}}</script>".into())],
                "letter.html.hbs",
                "<script>",
            ),
            (vec![("t/letter.hbs", "x".into())], "letter.hbs", "unknown"),
            (
                vec![("t/email.txt.hbs", "x".into())],
                "email.subject.hbs",
                "missing",
            ),
        ];
        for (files, file, detail) in cases {
            let files: Vec<(&str, &str)> = files.iter().map(|(p, s)| (*p, s.as_str())).collect();
            let dir = temp_templates(&files);
            let e = Templates::load(&dir).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, RenderError::Load { .. }), "{msg}");
            assert!(msg.contains(&format!("t/{file}")), "{file}: {msg}");
            assert!(msg.contains(detail), "{file}: {msg}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn intranet_falls_back_to_the_website_body_and_context_is_complete() {
        let dir = temp_templates(&[(
            "t/website.html.hbs",
            "{{id}}|{{kind}}|{{category}}|{{scope}}|{{approval.approver}}|{{approval.reference}}|{{approval.approved_at}}|{{schedule.publish_at}}|{{schedule.publish_at_time}}|{{schedule.expires_at_time}}|{{publish_date}}",
        )]);
        let t = Templates::load(&dir).unwrap();
        let j = job("t", serde_json::json!({}));
        assert!(t.has("t", ChannelKind::Intranet) && !t.has("t", ChannelKind::Sms));
        let Rendered::Page { html, .. } = t.render(&j, ChannelKind::Intranet, None).unwrap() else {
            panic!()
        };
        assert_eq!(
            html,
            "zzb-2026-0142|release|6.3|public|李四|组干审〔2026〕12号|2026年11月28日|2026年12月1日|2026年12月1日 09:00|2026年12月8日 18:00|2026年12月1日"
        );
        let mut j = j;
        j.schedule.publish_at = None;
        let e = t.render(&j, ChannelKind::Website, None).unwrap_err();
        assert!(e.to_string().contains("schedule.publish_at"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rendered_serializes_with_a_type_tag() {
        let r = Rendered::Wecom {
            markdown: "m".into(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"type": "wecom", "markdown": "m"})
        );
    }
}
