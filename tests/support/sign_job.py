#!/usr/bin/env python3
"""An independent approval system, for the integration tests of `disclose`.

It shares no code with the dispatcher: it makes Ed25519 keys and signs jobs the way SPEC §3 says
an upstream approval system does, so that a test passing proves the two sides agree on the
contract (RFC 8785 canonical form, the field the signature leaves out, the key file formats),
not merely that `disclose` agrees with itself.

    sign_job.py keygen --id ID --pub-dir DIR --secret-dir DIR
        DIR/ID.pub: base64 of the raw 32-byte public key (what `[approval] keys_dir` trusts)
        DIR/ID.key: base64 of the raw 32-byte secret seed (mode 0600; same format as
                    `disclose keys new`, so either side can sign with the other's key)
    sign_job.py sign --key SECRET.key [--key-id ID] JOB.json...
        Sets approval.key_id (default: the key file's stem) and approval.signature, the base64
        (standard alphabet) Ed25519 signature over the RFC 8785 form of the job without
        approval.signature. Rewrites each file in place.
    sign_job.py canonical JOB.json
        Prints the canonical form (for debugging a disagreement).

Requires the `cryptography` package (`pip install cryptography`).
"""

import argparse
import base64
import json
import os
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# RFC 8785 numbers are IEEE doubles; only integers that a double holds exactly are written here,
# as plain decimals (which is what ECMAScript's Number.prototype.toString gives for them).
MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalError(ValueError):
    pass


def canonical(value):
    """The RFC 8785 (JCS) serialisation of a JSON value parsed by `load_strict`."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalError(f"integer {value} does not fit an IEEE double exactly")
        return str(value)
    if isinstance(value, float):
        # ECMAScript number formatting is not needed by jobs; refuse rather than guess.
        raise CanonicalError(f"number {value!r} is not an integer; this signer refuses floats")
    if isinstance(value, str):
        # json.dumps escapes exactly ", \\, \b \f \n \r \t and other controls as \u00xx (lower
        # case), leaving everything else (with ensure_ascii=False) as is: RFC 8785 §3.2.2.2.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        # RFC 8785 §3.2.3: member names sorted by their UTF-16 code units.
        names = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(canonical(k) + ":" + canonical(value[k]) for k in names) + "}"
    raise CanonicalError(f"not a JSON value: {type(value).__name__}")


def load_strict(text):
    """Parse JSON, refusing duplicate member names (I-JSON) and non-integer numbers."""

    def no_duplicates(pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise CanonicalError(f"duplicate member name {k!r}")
            obj[k] = v
        return obj

    def no_float(s):
        raise CanonicalError(f"number {s} is not an integer; this signer refuses floats")

    return json.loads(
        text,
        object_pairs_hook=no_duplicates,
        parse_float=no_float,
        parse_constant=no_float,
    )


def signed_message(job):
    """The bytes the signature covers: the canonical job without approval.signature."""
    unsigned = dict(job)
    approval = dict(unsigned.get("approval") or {})
    approval.pop("signature", None)
    unsigned["approval"] = approval
    return canonical(unsigned).encode("utf-8")


def write_new(path, text, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def keygen(args):
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    os.makedirs(args.pub_dir, exist_ok=True)
    os.makedirs(args.secret_dir, exist_ok=True)
    write_new(os.path.join(args.secret_dir, args.id + ".key"), base64.b64encode(seed).decode(), 0o600)
    write_new(os.path.join(args.pub_dir, args.id + ".pub"), base64.b64encode(public).decode(), 0o644)


def sign(args):
    with open(args.key, encoding="ascii") as f:
        seed = base64.b64decode(f.read().strip(), validate=True)
    if len(seed) != 32:
        raise CanonicalError(f"{args.key}: an Ed25519 secret seed is 32 bytes, not {len(seed)}")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    key_id = args.key_id or os.path.splitext(os.path.basename(args.key))[0]
    for path in args.jobs:
        with open(path, encoding="utf-8") as f:
            job = load_strict(f.read())
        if not isinstance(job.get("approval"), dict):
            raise CanonicalError(f"{path}: approval must be an object to be signed")
        job["approval"]["key_id"] = key_id
        signature = key.sign(signed_message(job))
        job["approval"]["signature"] = base64.b64encode(signature).decode("ascii")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(job, f, ensure_ascii=False, indent=2)
            f.write("\n")


def show_canonical(args):
    with open(args.job, encoding="utf-8") as f:
        sys.stdout.write(canonical(load_strict(f.read())) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("--id", required=True)
    k.add_argument("--pub-dir", required=True)
    k.add_argument("--secret-dir", required=True)
    k.set_defaults(run=keygen)
    s = sub.add_parser("sign")
    s.add_argument("--key", required=True)
    s.add_argument("--key-id")
    s.add_argument("jobs", nargs="+")
    s.set_defaults(run=sign)
    c = sub.add_parser("canonical")
    c.add_argument("job")
    c.set_defaults(run=show_canonical)
    args = p.parse_args()
    try:
        args.run(args)
    except (CanonicalError, OSError, ValueError) as e:
        print(f"sign_job.py: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
