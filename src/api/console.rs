//! The web console for the spokesperson office (新闻发言人办公室): recent jobs with their status,
//! and a page per job with its channels, outcomes, refusals with their articles, and the audit
//! entries. Server-rendered HTML with the style inline and no script, font or image from
//! anywhere: it works on an isolated government network. Every piece of job data is untrusted
//! (it came from outside in a job) and is HTML-escaped; personal data is masked as in the API.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{JobDetail, JobFilter, Shared, job_detail_of, page_of_jobs, percent_decode};
use crate::ledger::{JobSummary, RefusalRow};

/// Text for an HTML element or attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A path segment for a link (job ids are checked at intake, but a link never trusts that).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei',sans-serif;margin:0;color:#222;background:#f6f6f4}\
header{background:#a4000f;color:#fff;padding:12px 24px}header a{color:#fff;text-decoration:none}h1{font-size:20px;margin:0}\
main{padding:16px 24px}table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:20px}\
th,td{border:1px solid #ddd;padding:6px 8px;text-align:left;font-size:14px;vertical-align:top}th{background:#eee}\
.s-completed,.o-delivered{color:#176b2c}.s-in_progress,.s-scheduled,.o-pending,.o-sending{color:#8a5a00}\
.s-cancelled,.o-failed,.o-unknown,.o-cancelled{color:#a4000f}.muted{color:#777}pre{white-space:pre-wrap;margin:0;font-size:12px}\
h2{font-size:17px;border-left:4px solid #a4000f;padding-left:8px}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{} · 干部信息公开发布</title>\
<meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head>\
<body><header><h1><a href=\"/\">干部信息公开发布 · 控制台</a></h1></header><main>{body}</main></body></html>\n",
        esc(title)
    )
}

pub fn status_zh(s: &str) -> &str {
    match s {
        "scheduled" => "已排期",
        "in_progress" => "发送中",
        "completed" => "已完成",
        "cancelled" => "已取消",
        other => other,
    }
}

pub fn state_zh(s: &str) -> &str {
    match s {
        "pending" => "待发送",
        "sending" => "发送中",
        "delivered" => "已送达",
        "failed" => "失败",
        "skipped" => "已跳过",
        "unknown" => "结果未知",
        "cancelled" => "已取消",
        other => other,
    }
}

fn outcomes_cell(j: &JobSummary) -> String {
    j.outcomes
        .iter()
        .map(|(ch, states)| {
            let s: Vec<String> = states
                .iter()
                .map(|(st, n)| {
                    format!(
                        "<span class=\"o-{}\">{} {n}</span>",
                        esc(st),
                        esc(state_zh(st))
                    )
                })
                .collect();
            format!("<b>{}</b> {}", esc(ch), s.join(" · "))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn refusal_list(rows: &[RefusalRow]) -> String {
    let mut out = String::from(
        "<table><tr><th>时间</th><th>任务</th><th>拒绝代码</th><th>依据条款</th><th>说明</th></tr>",
    );
    for r in rows {
        for x in &r.refusals {
            let job = r.job_id.as_deref().unwrap_or("（无法识别）");
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&r.at),
                esc(job),
                esc(x.code.as_str()),
                esc(&x.article),
                esc(&x.message)
            ));
        }
    }
    out.push_str("</table>");
    out
}

/// `GET /`: recent jobs (filters as `GET /api/jobs`) and recent refusals.
pub async fn index(
    State(state): State<Shared>,
    query: Result<Query<JobFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let f = match query {
        Ok(Query(f)) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Html(page("错误", &esc(&e.body_text()))),
            )
                .into_response();
        }
    };
    let ledger = state.ledger.clone();
    let res = tokio::task::spawn_blocking(move || {
        let jobs = page_of_jobs(ledger.as_ref(), &f)?;
        let refusals = ledger.refusals(20).map_err(|e| e.to_string())?;
        Ok::<_, String>((jobs, refusals))
    })
    .await;
    let (jobs, refusals) = match res {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return (StatusCode::BAD_REQUEST, Html(page("错误", &esc(&e)))).into_response();
        }
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(page("错误", &esc(&e.to_string()))),
            )
                .into_response();
        }
    };
    let list = &jobs.jobs;
    let mut body = format!(
        "<h2>最近的发布任务</h2><p class=\"muted\">共 {} 个任务 · 第 {} 页</p>",
        jobs.total, jobs.page
    );
    body.push_str("<table id=\"jobs\"><tr><th>任务编号</th><th>标题</th><th>类别</th><th>范围</th><th>状态</th><th>受理时间</th><th>各渠道结果</th></tr>");
    for j in list {
        body.push_str(&format!(
            "<tr><td><a href=\"/jobs/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td class=\"s-{}\">{}</td><td>{}</td><td>{}</td></tr>",
            seg(&j.id),
            esc(&j.id),
            esc(&j.title),
            esc(&j.category),
            esc(&j.scope),
            esc(&j.status),
            esc(status_zh(&j.status)),
            esc(&j.accepted_at),
            outcomes_cell(j)
        ));
    }
    body.push_str("</table>");
    if list.is_empty() {
        body.push_str("<p class=\"muted\">暂无任务。</p>");
    }
    body.push_str("<h2>最近拒绝的任务</h2>");
    if refusals.is_empty() {
        body.push_str("<p class=\"muted\">暂无。</p>");
    } else {
        body.push_str(&refusal_list(&refusals));
    }
    Html(page("发布任务", &body)).into_response()
}

/// `GET /jobs/{id}`.
pub async fn job(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    let ledger = state.ledger.clone();
    let id2 = id.clone();
    match tokio::task::spawn_blocking(move || job_detail_of(ledger.as_ref(), &id2)).await {
        Ok(Ok(Some(d))) => Html(page(&d.id, &job_body(&d))).into_response(),
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            Html(page(
                "未找到",
                &format!("<p>台账中没有任务 {}。</p>", esc(&id)),
            )),
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(page("错误", &esc(&e))),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(page("错误", &esc(&e.to_string()))),
        )
            .into_response(),
    }
}

fn job_body(d: &JobDetail) -> String {
    let mut b = String::new();
    match &d.summary {
        Some(s) => {
            b.push_str(&format!(
                "<h2>{}</h2><table id=\"summary\"><tr><th>任务编号</th><td>{}</td></tr><tr><th>决定</th><td>已受理</td></tr>\
<tr><th>状态</th><td class=\"s-{}\">{}</td></tr><tr><th>类型</th><td>{}</td></tr><tr><th>类别</th><td>{}</td></tr>\
<tr><th>范围</th><td>{}</td></tr><tr><th>受理时间</th><td>{}</td></tr><tr><th>发布时间</th><td>{}</td></tr></table>",
                esc(&s.title),
                esc(&s.id),
                esc(&s.status),
                esc(status_zh(&s.status)),
                esc(&s.kind),
                esc(&s.category),
                esc(&s.scope),
                esc(&s.accepted_at),
                esc(s.publish_at.as_deref().unwrap_or("立即"))
            ));
            b.push_str(
                "<h2>各渠道结果</h2><table id=\"channels\"><tr><th>渠道</th><th>结果</th></tr>",
            );
            for (ch, states) in &s.outcomes {
                let cells: Vec<String> = states
                    .iter()
                    .map(|(st, n)| {
                        format!(
                            "<span class=\"o-{}\">{} {n}</span>",
                            esc(st),
                            esc(state_zh(st))
                        )
                    })
                    .collect();
                b.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td></tr>",
                    esc(ch),
                    cells.join(" · ")
                ));
            }
            b.push_str("</table>");
        }
        None => b.push_str(&format!(
            "<h2>任务 {}</h2><p>决定：<b>已拒绝</b>，未安排任何发送。</p>",
            esc(&d.id)
        )),
    }
    if !d.refusals.is_empty() {
        b.push_str("<h2>拒绝原因</h2>");
        b.push_str(&refusal_list(&d.refusals));
    }
    if !d.deliveries.is_empty() {
        b.push_str(&format!(
            "<h2>投递明细</h2><p class=\"muted\">显示 {} 条（个人信息已脱敏）</p>\
<table id=\"deliveries\"><tr><th>渠道</th><th>收件人</th><th>姓名</th><th>身份</th><th>结果</th><th>尝试次数</th><th>代码</th><th>说明</th></tr>",
            d.deliveries_shown
        ));
        for x in &d.deliveries {
            b.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"o-{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&x.channel),
                esc(&x.recipient),
                esc(&x.name),
                esc(&x.role),
                esc(&x.state),
                esc(state_zh(&x.state)),
                x.attempts,
                esc(x.code.as_deref().unwrap_or("")),
                esc(x.detail.as_deref().unwrap_or(""))
            ));
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>审计记录</h2><table id=\"audit\"><tr><th>序号</th><th>时间</th><th>类型</th><th>内容</th></tr>");
    for a in &d.audit {
        let body = serde_json::to_string_pretty(&a.body).unwrap_or_default();
        b.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            a.seq,
            esc(&a.at),
            esc(&a.kind),
            esc(&body)
        ));
    }
    b.push_str("</table>");
    b
}

/// The log-in form; 401 so that a script sees it was not let in.
pub fn login_page(message: Option<&str>) -> Response {
    let note = message
        .map(|m| format!("<p class=\"o-failed\">{}</p>", esc(m)))
        .unwrap_or_default();
    let body = format!(
        "<h2>登录</h2>{note}<form method=\"post\" action=\"/login\"><p>请输入接口令牌（由运维人员在环境变量中配置）：</p>\
<p><input type=\"password\" name=\"token\" size=\"48\" autocomplete=\"off\"> <button type=\"submit\">登录</button></p></form>"
    );
    (StatusCode::UNAUTHORIZED, Html(page("登录", &body))).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
    /// Where to go after logging in: a path of this server only (never `//host`: no open redirect).
    next: Option<String>,
}

/// `GET /login`: the form; with `?token=` (for kiosks and headless browsers that cannot fill a
/// form), the same exchange as `POST /login`. The server never logs request URIs.
pub async fn login_get(State(state): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    match q.token {
        Some(t) => exchange(&state, &t, q.next.as_deref()),
        None => login_page(None),
    }
}

/// `POST /login` with a form field `token`.
pub async fn login_post(State(state): State<Shared>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let token = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v))
        .unwrap_or_default();
    exchange(&state, &token, None)
}

fn exchange(state: &Shared, token: &str, next: Option<&str>) -> Response {
    if state.token.is_none() {
        return super::unconfigured(state);
    }
    if !state.admits(token.trim()) {
        return login_page(Some("令牌不正确。"));
    }
    let next = next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/");
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    if let Ok(v) = super::console_cookie(token.trim()).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(seg("a/b?c"), "a%2Fb%3Fc");
    }
}
