#!/usr/bin/env python3
"""Generates the hostile-input corpus of `tests/hostile.rs`: bad jobs, one file each, named for
what they test, and `cases.tsv` (file, expected refusal code, raw or signed). `EXPECTED.tsv`
(file, code, a fragment of that refusal's message) is not written here: its fragments were taken
from the refusals once and reviewed by hand (each names the field, the limit or the fault), and a
new case needs its row added there. `tests/hostile.rs` checks that the two lists agree.

    python3 tests/corpus/make.py      # from the repository root; rewrites tests/corpus/jobs/

Jobs whose point lies past the signature check are signed with the example key by
`tests/support/sign_job.py` (the independent signer); the others are raw bytes.
"""

import copy
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "corpus", "jobs")
KEY = os.path.join(ROOT, "examples", "keys", "example-2026.key")
SIGNER = os.path.join(ROOT, "tests", "support", "sign_job.py")


def example(name):
    with open(os.path.join(ROOT, "examples", "jobs", "src", name), encoding="utf-8") as f:
        return json.load(f)


RELEASE = example("01-pre-appointment-release.json")
NOTICE = example("02-scheduled-unit-notice.json")
LETTERS = example("03-investigation-result-letters.json")

cases = []  # (file, code, signed)
counter = [0]


def job_of(base, name, **changes):
    job = copy.deepcopy(base)
    counter[0] += 1
    job["id"] = f"corpus-{counter[0]:03d}"
    for path, value in changes.items():
        keys = path.split("__")
        at = job
        for k in keys[:-1]:
            at = at[int(k)] if isinstance(at, list) else at[k]
        if value is DELETE:
            del at[keys[-1]]
        else:
            at[keys[-1]] = value
    return job


DELETE = object()


def raw(name, data, code="malformed"):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    cases.append((name, code, "raw"))


def signed(name, job, code):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(job, f, ensure_ascii=False)
    subprocess.run([sys.executable, SIGNER, "sign", "--key", KEY, path], check=True)
    cases.append((name, code, "signed"))


def text(job):
    return json.dumps(job, ensure_ascii=False)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    r = json.dumps(RELEASE, ensure_ascii=False).encode("utf-8")

    # ---- not a job at all
    raw("malformed-empty-file.json", b"")
    raw("malformed-whitespace-only.json", b"   \n\t ")
    raw("malformed-plain-text.json", "这不是 JSON")
    raw("malformed-json-array.json", "[1, 2, 3]")
    raw("malformed-json-string.json", '"a job"')
    raw("malformed-json-number.json", "42")
    raw("malformed-json-null.json", "null")
    raw("malformed-json-true.json", "true")
    raw("malformed-two-objects.json", text(RELEASE) + text(RELEASE))
    raw("malformed-trailing-garbage.json", text(RELEASE) + " x")
    raw("malformed-trailing-comma.json", text(RELEASE)[:-1] + ",}")
    raw("malformed-single-quotes.json", text(RELEASE).replace('"', "'"))
    raw("malformed-comment.json", "// a job\n" + text(RELEASE))
    raw("malformed-bom.json", b"\xef\xbb\xbf" + r)
    raw("malformed-xml.json", "<job><id>x</id></job>")
    # ---- truncations
    for pct in (1, 10, 25, 50, 75, 90, 99):
        raw(f"malformed-truncated-release-at-{pct}pct.json", r[: len(r) * pct // 100])
    l = json.dumps(LETTERS, ensure_ascii=False).encode("utf-8")
    for pct in (33, 66):
        raw(f"malformed-truncated-letters-at-{pct}pct.json", l[: len(l) * pct // 100])
    cut = r.index("关".encode("utf-8")) + 1
    raw("malformed-truncated-mid-utf8-character.json", r[:cut])
    # ---- deep nesting
    for depth in (200, 10_000, 200_000):
        data = "[" * depth + "]" * depth
        raw(f"malformed-deep-nesting-arrays-{depth}.json", text(RELEASE)[:-1] + f', "x": {data}}}')
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    raw("malformed-deep-nesting-objects-in-data.json", text(RELEASE).replace('"data": {', f'"data": {{"deep": {deep}, ', 1))
    raw("malformed-deep-nesting-unclosed.json", "[" * 100_000)
    # ---- huge arrays and sizes
    raw("malformed-huge-array-of-channels.json", text(job_of(RELEASE, "", channels=["website"] * 90_000)))
    raw("malformed-huge-array-in-unknown-field.json", text(RELEASE)[:-1] + ', "x": [' + ",".join(["1"] * 450_000) + "]}")
    raw("malformed-over-1mib-of-spaces.json", text(RELEASE) + " " * (1 << 20))
    signed("template-error-huge-title-too-long-for-sms.json", job_of(RELEASE, "", title="公" * 300_000), "template_error")
    # ---- invalid UTF-8 and NUL bytes
    raw("malformed-invalid-utf8-0xff-in-title.json", r.replace("关".encode(), b"\xff", 1))
    raw("malformed-invalid-utf8-overlong-slash.json", r.replace(b'"title"', b'"ti\xc0\xaftle"', 1))
    raw("malformed-invalid-utf8-surrogate-half.json", r.replace("关".encode(), b"\xed\xa0\x80", 1))
    raw("malformed-invalid-utf8-latin1-name.json", r.replace("张三".encode(), "Müller".encode("latin-1"), 1))
    raw("malformed-invalid-utf8-utf16.json", text(RELEASE).encode("utf-16"))
    raw("malformed-nul-byte-between-fields.json", r.replace(b'"kind"', b'\x00"kind"', 1))
    raw("malformed-nul-byte-inside-string.json", r.replace("关".encode(), b"\x00", 1))
    raw("malformed-nul-byte-at-end.json", r + b"\x00")
    raw("malformed-control-character-in-string.json", r.replace("关".encode(), b"\x07", 1))
    raw("malformed-lone-surrogate-escape.json", text(RELEASE).replace("关", "\\ud800", 1))
    # ---- numbers out of range and of the wrong kind
    raw("malformed-number-as-category.json", text(RELEASE).replace('"category": "6.3"', '"category": 6.3'))
    raw("malformed-number-1e999-in-data.json", text(RELEASE).replace('"data": {', '"data": {"n": 1e999, ', 1))
    raw("malformed-number-huge-integer-as-id.json", text(RELEASE).replace('"id": "zzb-2026-0142"', '"id": ' + "9" * 400))
    raw("malformed-number-negative-as-title.json", text(RELEASE).replace('"title": "关于张三同志任职前公示的公告"', '"title": -1e308'))
    raw("malformed-number-nan.json", text(RELEASE).replace('"data": {', '"data": {"n": NaN, ', 1))
    raw("malformed-number-infinity.json", text(RELEASE).replace('"data": {', '"data": {"n": Infinity, ', 1))
    raw("malformed-number-leading-zero.json", text(RELEASE).replace('"data": {', '"data": {"n": 007, ', 1))
    raw("malformed-number-hex.json", text(RELEASE).replace('"data": {', '"data": {"n": 0x10, ', 1))
    # ---- duplicate keys
    t = text(RELEASE)
    raw("malformed-duplicate-key-id.json", t.replace('"id": "zzb-2026-0142"', '"id": "zzb-2026-0142", "id": "zzb-2026-0999"'))
    raw("malformed-duplicate-key-scope.json", t.replace('"scope": "public"', '"scope": "specific", "scope": "public"'))
    raw("malformed-duplicate-key-channels.json", t.replace('"channels": [', '"channels": ["letter"], "channels": ['))
    raw("malformed-duplicate-key-approval-key-id.json", t.replace('"key_id": "example-2026"', '"key_id": "other", "key_id": "example-2026"'))
    raw("malformed-duplicate-key-signature.json", t.replace('"signature": ""', '"signature": "", "signature": "AAAA"'))
    raw("malformed-duplicate-key-in-data.json", t.replace('"report_phone": "0000-12380"', '"report_phone": "0000-12380", "report_phone": "110"'))
    raw("malformed-duplicate-key-in-candidate.json", t.replace('"name": "张三"', '"name": "张三", "name": "李四"', 1))
    raw("malformed-duplicate-key-publish-at.json", t.replace('"publish_at": "2026-11-20T09:00:00+08:00"', '"publish_at": "2026-11-20T09:00:00+08:00", "publish_at": "2027-01-01T09:00:00+08:00"'))
    # ---- dates without zones and impossible dates
    for name, value in [
        ("no-zone", "2026-11-20T09:00:00"),
        ("date-only", "2026-11-20"),
        ("month-13", "2026-13-20T09:00:00+08:00"),
        ("february-30", "2026-02-30T09:00:00+08:00"),
        ("hour-25", "2026-11-20T25:00:00+08:00"),
        ("offset-out-of-range", "2026-11-20T09:00:00+25:00"),
        ("epoch-number-string", "1763600400"),
        ("chinese-date", "2026年11月20日"),
        ("empty", ""),
    ]:
        raw(f"malformed-date-{name}-publish-at.json", text(job_of(RELEASE, "", schedule__publish_at=value)))
    raw("malformed-date-no-zone-expires-at.json", text(job_of(RELEASE, "", schedule__expires_at="2026-11-27T18:00:00")))
    raw("malformed-date-no-zone-approved-at.json", text(job_of(RELEASE, "", approval__approved_at="2026-11-19T16:00:00")))
    raw("malformed-date-as-number.json", text(job_of(RELEASE, "", schedule__publish_at=1763600400)))
    # ---- wrong types, unknown fields, unknown values, missing fields
    for name, path, value in [
        ("wrong-type-channels-string", "channels", "website"),
        ("wrong-type-channels-object", "channels", {"website": True}),
        ("wrong-type-groups-string", "audience__groups", "subscribers"),
        ("wrong-type-audience-array", "audience", ["subscribers"]),
        ("wrong-type-data-array", "data", [1, 2]),
        ("wrong-type-approval-string", "approval", "李四"),
        ("wrong-type-id-null", "id", None),
        ("wrong-type-id-array", "id", ["a"]),
        ("wrong-type-schedule-string", "schedule", "tomorrow"),
        ("unknown-kind", "kind", "memo"),
        ("unknown-scope", "scope", "world"),
        ("unknown-classification", "classification", "cosmic"),
        ("unknown-channel-fax", "channels", ["website", "fax"]),
        ("unknown-field-top-level", "priority", "urgent"),
        ("unknown-field-in-approval", "approval__comment", "ok"),
        ("unknown-field-in-schedule", "schedule__timezone", "Asia/Shanghai"),
        ("unknown-field-in-audience", "audience__cc", ["x"]),
        ("missing-id", "id", DELETE),
        ("missing-title", "title", DELETE),
        ("missing-approval", "approval", DELETE),
    ]:
        raw(f"malformed-{name}.json", text(job_of(RELEASE, "", **{path: value})))
    raw("malformed-unknown-field-in-recipient.json", text(job_of(RELEASE, "", audience__recipients=[{"id": "x1", "name": "王五", "role": "member", "fax": "0"}])))

    # ---- the signature (raw: the bytes are the point)
    raw("unapproved-empty-signature.json", text(RELEASE), "unapproved")
    raw("unapproved-no-signature-field.json", text(job_of(RELEASE, "", approval__signature=DELETE)), "unapproved")
    raw("unapproved-signature-not-base64.json", text(job_of(RELEASE, "", approval__signature="!!! not base64 !!!")), "unapproved")
    raw("unapproved-signature-wrong-length.json", text(job_of(RELEASE, "", approval__signature="AAAA")), "unapproved")
    raw("unapproved-signature-of-zeros.json", text(job_of(RELEASE, "", approval__signature="A" * 86 + "==")), "unapproved")
    raw("malformed-key-id-path-traversal.json", text(job_of(RELEASE, "", approval__key_id="../../etc/passwd")))
    for name, change in [
        ("title-changed", ("title", "关于张三同志任职的决定")),
        ("scope-changed", ("scope", "specific")),
        ("key-id-changed-to-unknown", ("approval.key_id", "nobody-2026")),
        ("channel-added", ("channels", ["website", "wechat", "sms", "email", "letter"])),
        ("data-changed", ("data", {**RELEASE["data"], "report_phone": "110"})),
    ]:
        job = job_of(RELEASE, "")
        path = os.path.join(OUT, ".tmp.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(job, f, ensure_ascii=False)
        subprocess.run([sys.executable, SIGNER, "sign", "--key", KEY, path], check=True)
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
        os.remove(path)
        at, key = job, change[0]
        while "." in key:
            head, key = key.split(".", 1)
            at = at[head]
        at[key] = change[1]
        raw(f"unapproved-tampered-after-signing-{name}.json", text(job), "unapproved")

    # ---- the rules (signed: past the signature check)
    for level in ("secret", "confidential", "top_secret"):
        signed(f"classified-{level}.json", job_of(RELEASE, "", classification=level), "classified")
    raw("malformed-declassification-missing-approved-at.json", text(job_of(RELEASE, "", classification="secret", declassification={"authority": "", "reference": ""})))
    signed("internal-to-public.json", job_of(RELEASE, "", classification="internal"), "internal_to_public")
    signed("scope-exceeds-category-unit-matter-to-public.json", job_of(NOTICE, "", scope="public", channels=["website"], audience={"groups": ["subscribers"], "recipients": []}), "scope_exceeds_category")
    signed("scope-exceeds-category-leadership-matter-to-unit.json", job_of(NOTICE, "", category="8.1"), "scope_exceeds_category")
    signed("channel-not-allowed-sms-in-unit-scope.json", job_of(NOTICE, "", channels=["intranet", "sms"]), "channel_not_allowed")
    signed("channel-not-allowed-website-for-letters.json", job_of(LETTERS, "", channels=["letter", "website"]), "channel_not_allowed")
    signed("audience-outside-scope-group-that-does-not-exist.json", job_of(RELEASE, "", audience={"groups": ["subscribers", "nosuch"], "recipients": []}), "audience_outside_scope")
    signed("audience-outside-scope-unit-group-to-public.json", job_of(RELEASE, "", audience={"groups": ["subscribers", "unit:czj"], "recipients": []}), "audience_outside_scope")
    signed("complainant-not-signed.json", job_of(LETTERS, "", complaint__signed=False), "complainant_not_signed")
    signed("justification-required-catch-all.json", job_of(RELEASE, "", category="6.7", template="general_notice", data={"body": "x"}, channels=["website"]), "justification_required")
    signed("template-error-unknown-template.json", job_of(RELEASE, "", template="no_such_notice"), "template_error")
    raw("malformed-template-name-path-traversal.json", text(job_of(RELEASE, "", template="../../etc/passwd")))
    signed("template-error-missing-variable.json", job_of(RELEASE, "", data={k: v for k, v in RELEASE["data"].items() if k != "report_phone"}), "template_error")
    signed("schedule-invalid-expires-before-publish.json", job_of(RELEASE, "", schedule={"publish_at": "2026-12-07T09:00:00+08:00", "expires_at": "2026-12-06T18:00:00+08:00"}), "schedule_invalid")
    signed("schedule-invalid-publicity-four-working-days.json", job_of(RELEASE, "", schedule={"publish_at": "2026-12-07T09:00:00+08:00", "expires_at": "2026-12-10T18:00:00+08:00"}), "schedule_invalid")
    signed("schedule-invalid-year-without-calendar.json", job_of(RELEASE, "", schedule={"publish_at": "2031-03-03T09:00:00+08:00", "expires_at": "2031-03-14T18:00:00+08:00"}), "schedule_invalid")
    signed("unknown-target-correction.json", job_of(RELEASE, "", kind="correction", category="6.1", corrects="zzb-2026-0999", template="correction_notice", data={"original_title": "x", "correction": "y"}), "unknown_target")
    signed("unknown-target-retraction.json", job_of(RELEASE, "", kind="retraction", category="6.1", corrects="zzb-2026-0998", template="correction_notice", data={"original_title": "x", "correction": "y"}), "unknown_target")

    # ---- template injection in data: accepted, and the markup comes out literal or escaped
    evil = {
        "name": "{{ secret }}<script>alert(1)</script>",
        "current_post": "{% include '/etc/passwd' %}",
        "proposed_post": "${jndi:ldap://x}<img src=x onerror=alert(2)>",
    }
    signed("accepted-template-injection-in-data.json", job_of(RELEASE, "", data={**RELEASE["data"], "candidates": [evil], "report_address": "{{report_phone}}</p><script>x()</script>"}), "accepted")

    with open(os.path.join(ROOT, "tests", "corpus", "cases.tsv"), "w", encoding="utf-8") as f:
        f.write("# file\texpected code\thow made (generated by make.py)\n")
        for name, code, how in cases:
            f.write(f"{name}\t{code}\t{how}\n")
    print(f"{len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
