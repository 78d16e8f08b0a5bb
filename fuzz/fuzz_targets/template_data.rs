//! Untrusted text in a job's `data` → every channel of the shipped templates. Rendering must
//! never panic, and what the data says is shown, never run (SPEC §4: templates are strict and
//! escape HTML): the website and letter HTML carry no markup that came from the data — no `<`
//! of it survives unescaped — and template syntax in data (`{{ … }}`) is never expanded.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use disclose::job::ChannelKind;
use disclose::render::{RecipientView, Rendered, Templates};
use libfuzzer_sys::fuzz_target;

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates"))
            .expect("the shipped templates load")
    })
}

/// The example release with `text` in every free-text field of its data.
fn job_with(text: &str) -> Option<disclose::job::Job> {
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../examples/jobs/src/01-pre-appointment-release.json"
    ))
    .ok()?;
    v["data"]["candidates"][0]["name"] = text.into();
    v["data"]["candidates"][0]["current_post"] = text.into();
    v["data"]["report_address"] = text.into();
    let bytes = serde_json::to_vec(&v).ok()?;
    disclose::job::parse(&bytes).ok().map(|p| p.job)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(job) = job_with(text) else {
        return;
    };
    let recipient = RecipientView {
        id: "fuzz".into(),
        name: "（收件人）".into(),
        role: "recipient".into(),
    };
    for channel in [
        ChannelKind::Website,
        ChannelKind::Wechat,
        ChannelKind::Sms,
        ChannelKind::Email,
    ] {
        let Ok(rendered) = templates().render(&job, channel, Some(&recipient)) else {
            continue;
        };
        if let Rendered::Page { html, .. } = &rendered {
            // The same job with harmless data: every `<` beyond the template's own came from
            // the data unescaped.
            let plain = job_with("x").expect("the example parses");
            let Ok(Rendered::Page { html: base, .. }) = templates().render(&plain, channel, None)
            else {
                panic!("the example renders");
            };
            assert_eq!(
                html.matches('<').count(),
                base.matches('<').count(),
                "markup from data reached the page:\n{html}"
            );
        }
        if !text.contains("{{") {
            continue;
        }
        // `{{…}}` in data stays literal (escaped or not): never replaced by a value.
        let shown = rendered.preview();
        assert!(
            shown.contains("{{")
                || shown.contains("&#123;&#123;")
                || !matches!(channel, ChannelKind::Email),
            "template syntax in data was expanded:\n{shown}"
        );
    }
});
