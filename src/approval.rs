//! Approval signatures (SPEC §3): only jobs the upstream approval system signed are dispatched.
//!
//! The signature is Ed25519 over the RFC 8785 canonical form ([`crate::jcs::canonicalize`]) of
//! the whole job as received, with the one member `approval.signature` removed, encoded as
//! base64 (standard alphabet, padded). Signing the raw JSON value rather than the parsed [`Job`]
//! means that every member the approver saw is covered, and that key order and whitespace do
//! not matter while any change of content does.
//!
//! Trusted public keys live in a directory as `<key_id>.pub` files (base64 of the raw 32-byte
//! key); `approval.key_id` names the one to use. Secret keys (`<key_id>.key`, base64 of the
//! 32-byte seed, mode 0600) exist only on the approval side and in tests.
//!
//! [`Job`]: crate::job::Job

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::Value;

use crate::jcs::canonicalize;

/// Why a job's approval could not be verified, or a key could not be made, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval.signature is missing: the job is not signed")]
    MissingSignature,
    #[error("approval.key_id is missing: the job does not say which key signed it")]
    MissingKeyId,
    #[error("approval.signature is not base64 (standard alphabet, padded): {0}")]
    SignatureNotBase64(base64::DecodeError),
    #[error("approval.signature is {0} bytes long; an Ed25519 signature is 64 bytes")]
    SignatureLength(usize),
    #[error("approval.key_id {0:?} is not a trusted key (no {0}.pub in the keys directory)")]
    UnknownKey(String),
    #[error(
        "approval signature does not verify: the job was changed after approval or signed with another key"
    )]
    BadSignature,
    #[error("approval must be a JSON object to be signed")]
    ApprovalNotObject,
    #[error("invalid key id {0:?}: must match [A-Za-z0-9._-]{{1,64}}")]
    InvalidKeyId(String),
    #[error("trusted keys directory {}: {source}", path.display())]
    KeysDir { path: PathBuf, source: io::Error },
    #[error("key file {}: {reason}", path.display())]
    BadKeyFile { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} already exists; refusing to overwrite a key", .0.display())]
    KeyExists(PathBuf),
    #[error("no randomness from the operating system: {0}")]
    Random(getrandom::Error),
}

/// The trusted public keys, by key id.
#[derive(Clone, Default)]
pub struct KeyStore {
    keys: BTreeMap<String, VerifyingKey>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyStore {
    /// Load every `<key_id>.pub` in `dir`; other files are ignored. Any unreadable or malformed
    /// key file is an error naming it: a trusted-key directory is checked at start-up, whole.
    pub fn load(dir: &Path) -> Result<KeyStore, ApprovalError> {
        let dir_error = |source| ApprovalError::KeysDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut keys = BTreeMap::new();
        for entry in fs::read_dir(dir).map_err(dir_error)? {
            let path = entry.map_err(dir_error)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pub") {
                continue;
            }
            let bad = |reason: String| ApprovalError::BadKeyFile {
                path: path.clone(),
                reason,
            };
            let id = key_id_of(&path, "pub")?;
            let text = fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            let bytes: [u8; 32] = decode_32(text.trim()).map_err(bad)?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad("not a valid Ed25519 public key".into()))?;
            if key.is_weak() {
                // A small-order key would accept forged signatures under lax verification.
                return Err(bad("a weak (small-order) Ed25519 public key".into()));
            }
            keys.insert(id, key);
        }
        Ok(KeyStore { keys })
    }

    pub fn from_keys(keys: impl IntoIterator<Item = (String, VerifyingKey)>) -> KeyStore {
        KeyStore {
            keys: keys.into_iter().collect(),
        }
    }

    /// The trusted key ids, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.keys().map(String::as_str)
    }

    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The exact bytes the signature covers: the canonical form of `raw` without
/// `approval.signature` (every other member, `approval.key_id` included, is covered).
pub fn signed_message(raw: &Value) -> String {
    let has_signature = raw
        .get("approval")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key("signature"));
    if !has_signature {
        return canonicalize(raw);
    }
    let mut unsigned = raw.clone();
    if let Some(approval) = unsigned.get_mut("approval").and_then(Value::as_object_mut) {
        approval.remove("signature");
    }
    canonicalize(&unsigned)
}

/// Check the approval signature of a job as received (the strictly parsed raw JSON value).
pub fn verify(raw: &Value, keys: &KeyStore) -> Result<(), ApprovalError> {
    let approval = raw.get("approval").and_then(Value::as_object);
    let signature = approval
        .and_then(|a| a.get("signature"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(ApprovalError::MissingSignature)?;
    let key_id = approval
        .and_then(|a| a.get("key_id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(ApprovalError::MissingKeyId)?;
    let bytes = BASE64
        .decode(signature)
        .map_err(ApprovalError::SignatureNotBase64)?;
    let bytes: [u8; 64] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ApprovalError::SignatureLength(bytes.len()))?;
    let key = keys
        .get(key_id)
        .ok_or_else(|| ApprovalError::UnknownKey(key_id.to_owned()))?;
    let signature = Signature::from_bytes(&bytes);
    // Strict: refuses non-canonical and small-order signatures, so one approval has exactly one
    // valid encoding.
    key.verify_strict(signed_message(raw).as_bytes(), &signature)
        .map_err(|_| ApprovalError::BadSignature)
}

/// Sign a job in place: set `approval.key_id`, then `approval.signature` over everything else.
pub fn sign(raw: &mut Value, key_id: &str, key: &SigningKey) -> Result<(), ApprovalError> {
    if !crate::job::valid_id(key_id) {
        return Err(ApprovalError::InvalidKeyId(key_id.to_owned()));
    }
    let approval = raw
        .get_mut("approval")
        .and_then(Value::as_object_mut)
        .ok_or(ApprovalError::ApprovalNotObject)?;
    approval.insert("key_id".into(), Value::String(key_id.to_owned()));
    approval.remove("signature");
    let signature = key.sign(canonicalize(raw).as_bytes());
    let approval = raw
        .get_mut("approval")
        .and_then(Value::as_object_mut)
        .expect("checked above");
    approval.insert(
        "signature".into(),
        Value::String(BASE64.encode(signature.to_bytes())),
    );
    Ok(())
}

/// Make a new key pair: `DIR/ID.key` (base64 of the 32-byte secret seed, mode 0600 from the
/// moment it exists) and `DIR/ID.pub` (base64 of the public key). Never overwrites a key.
pub fn generate_key(id: &str, dir: &Path) -> Result<(PathBuf, PathBuf), ApprovalError> {
    if !crate::job::valid_id(id) {
        return Err(ApprovalError::InvalidKeyId(id.to_owned()));
    }
    fs::create_dir_all(dir).map_err(|source| ApprovalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let secret_path = dir.join(format!("{id}.key"));
    let public_path = dir.join(format!("{id}.pub"));
    for path in [&secret_path, &public_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(ApprovalError::KeyExists(path.clone()));
        }
    }

    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(ApprovalError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);

    write_new(&secret_path, 0o600, &BASE64.encode(key.to_bytes()))?;
    if let Err(e) = write_new(
        &public_path,
        0o644,
        &BASE64.encode(key.verifying_key().to_bytes()),
    ) {
        // Leave no secret behind whose public half was never written.
        let _ = fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok((secret_path, public_path))
}

/// The key id a key file stands for: its name is `<key_id>.<ext>`.
fn key_id_of(path: &Path, ext: &str) -> Result<String, ApprovalError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|id| crate::job::valid_id(id))
        .map(str::to_owned)
        .ok_or_else(|| ApprovalError::BadKeyFile {
            path: path.to_path_buf(),
            reason: format!(
                "the file name must be <key_id>.{ext}, key_id of [A-Za-z0-9._-]{{1,64}}"
            ),
        })
}

/// Read a secret key written by [`generate_key`]; the key id is the file stem.
pub fn load_signing_key(path: &Path) -> Result<(String, SigningKey), ApprovalError> {
    let bad = |reason: String| ApprovalError::BadKeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let id = key_id_of(path, "key")?;
    let text = fs::read_to_string(path).map_err(|source| ApprovalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let seed = decode_32(text.trim()).map_err(bad)?;
    Ok((id, SigningKey::from_bytes(&seed)))
}

/// Base64 of exactly 32 bytes. The reason never quotes the input: it may be a secret.
fn decode_32(text: &str) -> Result<[u8; 32], String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("not base64 (standard alphabet, padded): {e}"))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("holds {} bytes; an Ed25519 key is 32 bytes", bytes.len()))
}

fn write_new(path: &Path, mode: u32, line: &str) -> Result<(), ApprovalError> {
    let io_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            ApprovalError::KeyExists(path.to_path_buf())
        } else {
            ApprovalError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_error)?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn job() -> Value {
        json!({
            "id": "zzb-2026-0142",
            "kind": "release",
            "category": "6.3",
            "scope": "public",
            "classification": "none",
            "title": "关于张三同志任职前公示的公告",
            "template": "pre_appointment_notice",
            "data": { "candidates": [{ "name": "张三", "position": "县财政局局长" }], "report_phone": "0000-12380" },
            "channels": ["website", "wechat", "sms", "email"],
            "audience": { "groups": ["subscribers", "press"], "recipients": [] },
            "schedule": { "publish_at": "2026-12-01T09:00:00+08:00", "expires_at": "2026-12-08T18:00:00+08:00" },
            "approval": { "approver": "李四", "reference": "组干审〔2026〕12号", "approved_at": "2026-11-28T16:00:00+08:00",
                          "key_id": "approval-2026" }
        })
    }

    fn fixed_key(byte: u8) -> SigningKey {
        SigningKey::from_bytes(&[byte; 32])
    }

    fn store(id: &str, key: &SigningKey) -> KeyStore {
        KeyStore::from_keys([(id.to_owned(), key.verifying_key())])
    }

    fn signed() -> (Value, KeyStore) {
        let key = fixed_key(7);
        let mut raw = job();
        sign(&mut raw, "approval-2026", &key).unwrap();
        (raw, store("approval-2026", &key))
    }

    /// A scratch directory of its own for each test (and each test process).
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("disclose-approval-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trip() {
        let (raw, keys) = signed();
        let signature = raw["approval"]["signature"].as_str().unwrap();
        assert_eq!(BASE64.decode(signature).unwrap().len(), 64);
        assert_eq!(raw["approval"]["key_id"], "approval-2026");
        verify(&raw, &keys).unwrap();
        // Re-signing is deterministic (Ed25519) and ignores the old signature.
        let mut again = raw.clone();
        sign(&mut again, "approval-2026", &fixed_key(7)).unwrap();
        assert_eq!(again, raw);
    }

    /// Any change of content, at any depth, breaks the signature.
    #[test]
    fn any_change_breaks_verification() {
        let (raw, keys) = signed();
        type Change = (&'static str, fn(&mut Value));
        let changes: Vec<Change> = vec![
            ("title", |v| {
                v["title"] = json!("关于李五同志任职前公示的公告")
            }),
            ("nested data value", |v| {
                v["data"]["candidates"][0]["position"] = json!("县财政局副局长")
            }),
            ("scope", |v| v["scope"] = json!("unit")),
            ("array order", |v| {
                v["channels"] = json!(["wechat", "website", "sms", "email"])
            }),
            ("added member", |v| v["justification"] = json!("x")),
            ("removed member", |v| {
                v.as_object_mut().unwrap().remove("schedule");
            }),
            ("approval member", |v| {
                v["approval"]["approver"] = json!("王五")
            }),
            ("key id", |v| {
                v["approval"]["key_id"] = json!("approval-2027")
            }),
            ("number type", |v| v["data"]["report_phone"] = json!(12380)),
            ("empty string vs null", |v| {
                v["audience"]["recipients"] = json!(null)
            }),
        ];
        for (what, change) in changes {
            let mut changed = raw.clone();
            change(&mut changed);
            let keys = if what == "key id" {
                KeyStore::from_keys([("approval-2027".to_owned(), fixed_key(7).verifying_key())])
            } else {
                keys.clone()
            };
            let err = verify(&changed, &keys).unwrap_err();
            assert!(matches!(err, ApprovalError::BadSignature), "{what}: {err}");
            assert!(err.to_string().contains("changed after approval"), "{err}");
        }
    }

    /// Member order and whitespace are not content: the signature is over the canonical form.
    #[test]
    fn order_and_whitespace_do_not_matter() {
        let (raw, keys) = signed();
        let signature = raw["approval"]["signature"].as_str().unwrap();
        let key_id = &raw["approval"]["key_id"];
        // Hand-written, members in another order, spread over lines, escapes instead of literals.
        let text = format!(
            r#"
            {{ "approval" : {{ "signature": "{signature}", "reference": "组干审〔2026〕12号",
                              "key_id": {key_id}, "approved_at": "2026-11-28T16:00:00+08:00",
                              "approver": "\u674e\u56db" }},
               "schedule": {{ "expires_at": "2026-12-08T18:00:00+08:00", "publish_at": "2026-12-01T09:00:00+08:00" }},
               "audience": {{ "recipients": [ ], "groups": [ "subscribers", "press" ] }},
               "channels": [ "website", "wechat", "sms", "email" ],
               "data": {{ "report_phone": "0000-12380", "candidates": [ {{ "position": "县财政局局长", "name": "张三" }} ] }},
               "template": "pre_appointment_notice", "title": "关于张三同志任职前公示的公告",
               "classification": "none", "scope": "public", "category": "6.3", "kind": "release",
               "id": "zzb-2026-0142"
            }}
            "#
        );
        let reparsed = crate::jcs::parse_strict(&text).unwrap();
        verify(&reparsed, &keys).unwrap();
    }

    #[test]
    fn missing_signature_and_key_id() {
        let (raw, keys) = signed();
        let mut v = raw.clone();
        v["approval"].as_object_mut().unwrap().remove("signature");
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::MissingSignature)
        ));
        v["approval"]["signature"] = json!("");
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::MissingSignature)
        ));
        v["approval"]["signature"] = json!(12);
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::MissingSignature)
        ));
        let mut v = raw.clone();
        v.as_object_mut().unwrap().remove("approval");
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::MissingSignature)
        ));
        let mut v = raw.clone();
        v["approval"].as_object_mut().unwrap().remove("key_id");
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::MissingKeyId)
        ));
    }

    #[test]
    fn unknown_key_is_named() {
        let (raw, _) = signed();
        let others = store("approval-2025", &fixed_key(7));
        let err = verify(&raw, &others).unwrap_err();
        assert!(matches!(&err, ApprovalError::UnknownKey(id) if id == "approval-2026"));
        assert!(err.to_string().contains("\"approval-2026\""), "{err}");
    }

    #[test]
    fn signed_with_another_key() {
        let mut raw = job();
        sign(&mut raw, "approval-2026", &fixed_key(8)).unwrap();
        let keys = store("approval-2026", &fixed_key(7));
        assert!(matches!(
            verify(&raw, &keys),
            Err(ApprovalError::BadSignature)
        ));
    }

    #[test]
    fn tampered_signature() {
        let (raw, keys) = signed();
        let signature = raw["approval"]["signature"].as_str().unwrap().to_owned();
        let mut bytes = BASE64.decode(&signature).unwrap();

        // One bit flipped in R, then in S.
        for index in [0, 40] {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x01;
            let mut v = raw.clone();
            v["approval"]["signature"] = json!(BASE64.encode(&flipped));
            assert!(
                matches!(verify(&v, &keys), Err(ApprovalError::BadSignature)),
                "byte {index}"
            );
        }

        // Not base64 at all; URL-safe alphabet; padding dropped.
        let mut v = raw.clone();
        v["approval"]["signature"] = json!("not base64!");
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::SignatureNotBase64(_))
        ));
        v["approval"]["signature"] = json!(signature.trim_end_matches('='));
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::SignatureNotBase64(_))
        ));

        // Wrong length: truncated, and extended.
        bytes.truncate(63);
        v["approval"]["signature"] = json!(BASE64.encode(&bytes));
        let err = verify(&v, &keys).unwrap_err();
        assert!(matches!(err, ApprovalError::SignatureLength(63)), "{err}");
        bytes.extend([0, 0]);
        v["approval"]["signature"] = json!(BASE64.encode(&bytes));
        assert!(matches!(
            verify(&v, &keys),
            Err(ApprovalError::SignatureLength(65))
        ));
    }

    /// Independent of `sign` and `signed_message`: the canonical text is written out by hand and
    /// signed with ed25519-dalek directly; `verify` must accept the parsed job.
    #[test]
    fn independent_signature_over_hand_written_canonical_form() {
        let key = fixed_key(42);
        // RFC 8785 by hand: names sorted by UTF-16 code units ("approval" < "data" < "id" <
        // "title"; "approved_at" < "approver" < "key_id"), numbers as ECMAScript writes them
        // (1.50 -> 1.5, 1E3 -> 1000), non-ASCII literal, no whitespace, no signature member.
        let canonical = r#"{"approval":{"approved_at":"2026-11-28T16:00:00+08:00","approver":"李四","key_id":"k1"},"data":{"n":[1.5,1000,-0.001],"s":"a\"b\n"},"id":"x-1","title":"公告"}"#;
        let signature = BASE64.encode(key.sign(canonical.as_bytes()).to_bytes());
        let text = format!(
            r#"{{"title": "公告", "id": "x-1",
                "data": {{"s": "a\"b\u000a", "n": [1.50, 1E3, -1e-3]}},
                "approval": {{"key_id": "k1", "signature": "{signature}", "approver": "李四",
                              "approved_at": "2026-11-28T16:00:00+08:00"}}}}"#
        );
        let raw = crate::jcs::parse_strict(&text).unwrap();
        assert_eq!(signed_message(&raw), canonical);
        verify(&raw, &store("k1", &key)).unwrap();
    }

    #[test]
    fn sign_needs_an_approval_object_and_a_valid_key_id() {
        let key = fixed_key(1);
        let mut v = json!({"id": "x", "approval": "yes"});
        assert!(matches!(
            sign(&mut v, "k", &key),
            Err(ApprovalError::ApprovalNotObject)
        ));
        let mut v = json!({"id": "x"});
        assert!(matches!(
            sign(&mut v, "k", &key),
            Err(ApprovalError::ApprovalNotObject)
        ));
        let mut v = job();
        assert!(matches!(
            sign(&mut v, "../k", &key),
            Err(ApprovalError::InvalidKeyId(_))
        ));
    }

    #[test]
    fn generate_load_sign_verify() {
        let dir = scratch("generate").join("keys");
        let (secret, public) = generate_key("approval-2026", &dir).unwrap();
        assert_eq!(secret, dir.join("approval-2026.key"));
        assert_eq!(public, dir.join("approval-2026.pub"));
        let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "secret key mode {mode:o}");

        let (id, key) = load_signing_key(&secret).unwrap();
        assert_eq!(id, "approval-2026");
        let keys = KeyStore::load(&dir).unwrap();
        assert_eq!(keys.key_ids().collect::<Vec<_>>(), ["approval-2026"]);
        assert_eq!(keys.get(&id), Some(&key.verifying_key()));

        let mut raw = job();
        sign(&mut raw, &id, &key).unwrap();
        verify(&raw, &keys).unwrap();

        // Two keys are never the same.
        let (secret2, _) = generate_key("approval-2027", &dir).unwrap();
        let (_, key2) = load_signing_key(&secret2).unwrap();
        assert_ne!(key.to_bytes(), key2.to_bytes());
        assert_eq!(KeyStore::load(&dir).unwrap().len(), 2);
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn generate_refuses_to_overwrite() {
        let dir = scratch("overwrite");
        let (secret, public) = generate_key("k", &dir).unwrap();
        let before = fs::read(&secret).unwrap();
        let err = generate_key("k", &dir).unwrap_err();
        assert!(
            matches!(&err, ApprovalError::KeyExists(p) if p == &secret),
            "{err}"
        );
        assert_eq!(fs::read(&secret).unwrap(), before);

        // Only the public half present: still refused, and no secret is left behind.
        fs::remove_file(&secret).unwrap();
        let err = generate_key("k", &dir).unwrap_err();
        assert!(
            matches!(&err, ApprovalError::KeyExists(p) if p == &public),
            "{err}"
        );
        assert!(!secret.exists());

        assert!(matches!(
            generate_key("a/b", &dir),
            Err(ApprovalError::InvalidKeyId(_))
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_store_errors_name_the_path() {
        let dir = scratch("store");
        let err = KeyStore::load(&dir).unwrap_err();
        assert!(matches!(err, ApprovalError::KeysDir { .. }));
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );

        fs::create_dir_all(&dir).unwrap();
        let good = BASE64.encode(fixed_key(3).verifying_key().to_bytes());
        fs::write(dir.join("good.pub"), format!("  {good}\n\n")).unwrap();
        fs::write(dir.join("README"), "not a key").unwrap();
        fs::write(
            dir.join("good.key"),
            "ignored: secret keys are not trusted keys",
        )
        .unwrap();
        let keys = KeyStore::load(&dir).unwrap();
        assert_eq!(keys.key_ids().collect::<Vec<_>>(), ["good"]);

        for (name, content) in [
            ("short.pub", BASE64.encode([1u8; 31])),
            ("garbage.pub", "%%%".to_owned()),
            // The identity point: valid encoding, small order.
            (
                "weak.pub",
                BASE64.encode({
                    let mut b = [0u8; 32];
                    b[0] = 1;
                    b
                }),
            ),
        ] {
            let path = dir.join(name);
            fs::write(&path, content).unwrap();
            let err = KeyStore::load(&dir).unwrap_err();
            assert!(
                matches!(&err, ApprovalError::BadKeyFile { path: p, .. } if p == &path),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
            fs::remove_file(&path).unwrap();
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_secret_key_file() {
        let dir = scratch("secret");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.key");
        fs::write(&path, "c2hvcnQ=\n").unwrap();
        let err = load_signing_key(&path).unwrap_err();
        assert!(matches!(err, ApprovalError::BadKeyFile { .. }), "{err}");
        assert!(
            err.to_string().contains("k.key") && !err.to_string().contains("c2hvcnQ"),
            "{err}"
        );
        let missing = dir.join("missing.key");
        assert!(matches!(
            load_signing_key(&missing),
            Err(ApprovalError::Io { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
