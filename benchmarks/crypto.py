"""Crypto throughput benchmark: the envelope against raw libsodium, and Argon2id costs.

Run from the repository root::

    .venv/bin/python -m benchmarks.crypto            # 1 GiB streams
    .venv/bin/python -m benchmarks.crypto --quick    # 64 MiB streams

Every measurement runs in its own child process, which reports its time and its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``). Linux carries a process's peak over a
fork and exec, so this parent imports almost nothing and stays smaller than any child.
Streams are never held in memory: encryption reads a generator that repeats one 64 KiB
block of random bytes and writes to a null sink; decryption reads a blob that a helper
child wrote to a temporary file (so from the page cache) and drops the plaintext. Each
stream is measured ``--repeat`` times (raw and envelope interleaved) and the best run
kept. The targets: envelope throughput at least 0.8 of raw secretstream, peak RSS under
64 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    GIB,
    MIB,
    peak_rss_kib,
    platform_label,
    python_label,
    scratch_folder,
    size_label,
    text_table,
    utc_stamp,
)
from benchmarks._results import Results, publish

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 65536
Result = dict[str, Any]


# --------------------------------------------------------------------------- children
# Imports that cost memory (nacl, tipbox) happen only here, inside the child that measures.


def _blocks(total: int) -> Any:
    """A generator of ``total`` bytes: one random 64 KiB block, repeated."""
    block = os.urandom(CHUNK)
    for _ in range(total // CHUNK):
        yield block
    if total % CHUNK:
        yield block[: total % CHUNK]


class _NullSink:
    def write(self, data: bytes) -> int:
        return len(data)


def _item_ad() -> bytes:
    from tipbox.crypto import envelope

    return envelope.additional_data(envelope.Kind.FILE, bytes(16), bytes(16))


def child_encrypt(total: int, variant: str, workdir: Path) -> Result:
    from tipbox.crypto import envelope

    key = envelope.new_content_key()
    ad = _item_ad()
    source = _blocks(total)
    start = time.perf_counter()
    if variant == "raw":
        import nacl.bindings as sodium

        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        body_key, _ = envelope.content_subkeys(key)
        sink = _NullSink()
        sink.write(sodium.crypto_secretstream_xchacha20poly1305_init_push(state, body_key))
        chunk_ad: bytes | None = ad
        tag_message = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
        for block in source:
            sink.write(
                sodium.crypto_secretstream_xchacha20poly1305_push(
                    state, block, chunk_ad, tag_message
                )
            )
            chunk_ad = None
    else:
        encryptor = envelope.BodyEncryptor(key, ad, _NullSink(), digest=variant == "digest")
        for block in source:
            encryptor.write(block)
        encryptor.finish()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": total, "peak_rss_kib": peak_rss_kib()}


def child_prepare(total: int, variant: str, workdir: Path) -> Result:
    """Write an envelope blob of ``total`` content bytes for the decryption runs."""
    from tipbox.crypto import envelope

    key = envelope.new_content_key()
    with open(workdir / "blob", "wb") as sink:
        encryptor = envelope.BodyEncryptor(key, _item_ad(), sink)
        for block in _blocks(total):
            encryptor.write(block)
        info = encryptor.finish()
    (workdir / "key").write_bytes(key)
    return {"bytes": total, "blob_bytes": info.blob_length, "peak_rss_kib": peak_rss_kib()}


def child_decrypt(total: int, variant: str, workdir: Path) -> Result:
    from tipbox.crypto import envelope

    key = (workdir / "key").read_bytes()
    ad = _item_ad()
    with open(workdir / "blob", "rb") as blob:
        start = time.perf_counter()
        if variant == "raw":
            import nacl.bindings as sodium

            state = sodium.crypto_secretstream_xchacha20poly1305_state()
            body_key, _ = envelope.content_subkeys(key)
            header = blob.read(24)
            sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, body_key)
            chunk_ad: bytes | None = ad
            while sealed := blob.read(CHUNK + 17):
                sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed, chunk_ad)
                chunk_ad = None
        else:
            reader = envelope.decrypt_body(key, ad, blob, total, digest=variant == "digest")
            for _ in reader:
                pass
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": total, "peak_rss_kib": peak_rss_kib()}


def child_unwrap(total: int, variant: str, workdir: Path) -> Result:
    import nacl.bindings as sodium

    from tipbox.crypto import envelope

    secret = os.urandom(32)
    public = sodium.crypto_scalarmult_base(secret)
    wrap = envelope.wrap_key(envelope.new_content_key(), public)
    count = total
    start = time.perf_counter()
    if variant == "raw":
        for _ in range(count):
            sodium.crypto_box_seal_open(wrap, public, secret)
    elif variant == "public":
        for _ in range(count):
            envelope.unwrap_key(wrap, secret, public)
    else:
        for _ in range(count):
            envelope.unwrap_key(wrap, secret)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "count": count, "peak_rss_kib": peak_rss_kib()}


def child_argon2(total: int, variant: str, workdir: Path) -> Result:
    """Time one Argon2id derivation: raw libsodium, or through tipbox's own function."""
    from nacl.pwhash import argon2id

    from tipbox.config import CODENAME_KDF, JOURNALIST_KDF
    from tipbox.crypto.codenames import derive_source_keys, generate_codename, new_instance_salt
    from tipbox.crypto.journalist import derive_passphrase_keys
    from tipbox.crypto.passphrases import generate_passphrase

    times = []
    for _ in range(total):
        salt = os.urandom(argon2id.SALTBYTES)
        if variant == "journalist":
            passphrase = generate_passphrase()
            start = time.perf_counter()
            derive_passphrase_keys(passphrase, salt, JOURNALIST_KDF)
        elif variant == "codename":
            codename = generate_codename()
            instance_salt = new_instance_salt()
            start = time.perf_counter()
            derive_source_keys(codename, instance_salt, CODENAME_KDF)
        else:
            cost = JOURNALIST_KDF if variant == "raw-journalist" else CODENAME_KDF
            start = time.perf_counter()
            argon2id.kdf(32, b"correct horse battery staple", salt, cost.opslimit, cost.memlimit)
        times.append(time.perf_counter() - start)
    return {"seconds": min(times), "runs": times, "peak_rss_kib": peak_rss_kib()}


def child_info(total: int, variant: str, workdir: Path) -> Result:
    from importlib.metadata import version

    return {"pynacl": version("pynacl")}


CHILDREN = {
    "encrypt": child_encrypt,
    "prepare": child_prepare,
    "decrypt": child_decrypt,
    "unwrap": child_unwrap,
    "argon2": child_argon2,
    "info": child_info,
}


# --------------------------------------------------------------------------- parent


def run_child(name: str, total: int, variant: str, workdir: Path) -> Result:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = ["--child", name, str(total), variant, str(workdir)]
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.crypto", *child],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: Result = json.loads(completed.stdout)
    return result


def best(
    name: str, total: int, variants: list[str], workdir: Path, repeat: int
) -> dict[str, Result]:
    """The fastest of ``repeat`` runs per variant, the variants interleaved."""
    kept: dict[str, Result] = {}
    for _ in range(repeat):
        for variant in variants:
            result = run_child(name, total, variant, workdir)
            if variant not in kept or result["seconds"] < kept[variant]["seconds"]:
                kept[variant] = result
            kept[variant]["peak_rss_kib"] = max(
                kept[variant]["peak_rss_kib"], result["peak_rss_kib"]
            )
    return kept


def mb_per_s(result: Result) -> float:
    return float(result["bytes"]) / float(result["seconds"]) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description="tipbox crypto benchmark")
    parser.add_argument("--quick", action="store_true", help="64 MiB streams instead of 1 GiB")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per stream measurement (best kept)"
    )
    parser.add_argument(
        "--child", nargs=4, metavar=("NAME", "TOTAL", "VARIANT", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.child:
        name, total, variant, workdir = args.child
        print(json.dumps(CHILDREN[name](int(total), variant, Path(workdir))))
        return 0

    total = 64 * MIB if args.quick else GIB
    unwraps = 5_000 if args.quick else 20_000
    argon_runs = 1 if args.quick else 3
    with scratch_folder("crypto") as workdir:
        info = run_child("info", 0, "", workdir)
        encrypt = best("encrypt", total, ["raw", "envelope", "digest"], workdir, args.repeat)
        run_child("prepare", total, "", workdir)
        decrypt = best("decrypt", total, ["raw", "envelope", "digest"], workdir, args.repeat)
        unwrap = best("unwrap", unwraps, ["raw", "public", "derive"], workdir, args.repeat)
        argon = {
            variant: run_child("argon2", argon_runs, variant, workdir)
            for variant in ("raw-journalist", "journalist", "raw-codename", "codename")
        }

    label = size_label(total)
    print("tipbox crypto benchmark (benchmarks/crypto.py)")
    print(f"  date      {utc_stamp()}")
    print(f"  python    {python_label()}, {platform_label()}")
    print(f"  pynacl    {info['pynacl']}, with its bundled libsodium (version not exposed)")
    print(f"  cpus      {os.cpu_count()}")
    print(
        f"  data      {label} ({total:,} bytes) per stream, 64 KiB chunks, best of {args.repeat};"
        f" {'--quick' if args.quick else 'full run'}"
    )
    print("            MB/s = 10^6 bytes of content per second; peak RSS = ru_maxrss of the child")
    print()

    def stream_row(title: str, result: Result, raw: Result) -> list[str]:
        return [
            title,
            f"{mb_per_s(result):,.0f}",
            f"{result['peak_rss_kib'] / 1024:.1f} MiB",
            f"{mb_per_s(result) / mb_per_s(raw):.2f}",
        ]

    rows = [
        stream_row("raw secretstream push", encrypt["raw"], encrypt["raw"]),
        stream_row("envelope body encrypt", encrypt["envelope"], encrypt["raw"]),
        stream_row("envelope body encrypt + H(blob)", encrypt["digest"], encrypt["raw"]),
        stream_row("raw secretstream pull", decrypt["raw"], decrypt["raw"]),
        stream_row("envelope body decrypt", decrypt["envelope"], decrypt["raw"]),
        stream_row("envelope body decrypt + H(blob)", decrypt["digest"], decrypt["raw"]),
    ]
    print(text_table(rows, [f"stream of {label}", "MB/s", "peak RSS", "vs raw"]))
    print()

    def rate(result: Result) -> float:
        return float(result["count"]) / float(result["seconds"])

    rows = [
        ["raw crypto_box_seal_open", f"{rate(unwrap['raw']):,.0f}", "1.00"],
        [
            "unwrap_key, public key given",
            f"{rate(unwrap['public']):,.0f}",
            f"{rate(unwrap['public']) / rate(unwrap['raw']):.2f}",
        ],
        [
            "unwrap_key, public key derived",
            f"{rate(unwrap['derive']):,.0f}",
            f"{rate(unwrap['derive']) / rate(unwrap['raw']):.2f}",
        ],
    ]
    print(text_table(rows, [f"sealed-box open ({unwraps:,} wraps)", "opens/s", "vs raw"]))
    print()

    def argon_row(label: str, variant: str, raw: str) -> list[str]:
        ms = argon[variant]["seconds"] * 1000
        return [
            label,
            f"{ms:,.0f}",
            f"{argon[variant]['peak_rss_kib'] / 1024:.0f} MiB",
            f"{ms / (argon[raw]['seconds'] * 1000):.2f}",
        ]

    rows = [
        argon_row("raw argon2id, 3 passes, 256 MiB", "raw-journalist", "raw-journalist"),
        argon_row("journalist passphrase (derive_passphrase_keys)", "journalist", "raw-journalist"),
        argon_row("raw argon2id, 3 passes, 64 MiB", "raw-codename", "raw-codename"),
        argon_row("source codename (derive_source_keys)", "codename", "raw-codename"),
    ]
    print(
        text_table(
            rows,
            [f"Argon2id derivation (best of {argon_runs})", "ms", "peak RSS", "vs raw"],
        )
    )
    print()
    ok_speed = all(
        mb_per_s(group["envelope"]) >= 0.8 * mb_per_s(group["raw"]) for group in (encrypt, decrypt)
    )
    ok_memory = all(group["envelope"]["peak_rss_kib"] < 64 * 1024 for group in (encrypt, decrypt))
    print(
        f"targets: envelope >= 0.8 x raw: {'met' if ok_speed else 'NOT MET'};"
        f" peak RSS < 64 MiB: {'met' if ok_memory else 'NOT MET'}"
    )
    print()
    mode = "--quick" if args.quick else "full run"
    settings = (
        f"{mode}: {label} streams in 64 KiB chunks and {unwraps:,} wraps, best of"
        f" {args.repeat}; Argon2id best of {argon_runs}; each in a child process"
    )
    results = Results("crypto", settings)
    for verb, group in (("encrypt", encrypt), ("decrypt", decrypt)):
        envelope_run = group["envelope"]
        results.add(
            f"envelope body {verb}",
            f"{mb_per_s(envelope_run):,.0f} MB/s",
            f"{label} stream; {mb_per_s(envelope_run) / mb_per_s(group['raw']):.2f} x raw"
            " secretstream in the same run",
        )
        results.add(
            f"envelope body {verb}, peak RSS",
            f"{envelope_run['peak_rss_kib'] / 1024:.1f} MiB",
            "ru_maxrss of the child process",
        )
    results.add(
        "unwrap_key (public key given)",
        f"{rate(unwrap['public']):,.0f} opens/s",
        f"sealed-box open of {unwraps:,} wraps;"
        f" {rate(unwrap['public']) / rate(unwrap['raw']):.2f} x raw crypto_box_seal_open",
    )
    for variant, what in (
        ("codename", "source codename (derive_source_keys), opslimit 3, 64 MiB"),
        ("journalist", "journalist passphrase (derive_passphrase_keys), opslimit 3, 256 MiB"),
    ):
        results.add(
            f"Argon2id, {variant}",
            f"{argon[variant]['seconds'] * 1000:,.0f} ms",
            f"{what}; best of {argon_runs}, peak RSS"
            f" {argon[variant]['peak_rss_kib'] / 1024:.0f} MiB",
        )
    results.target("envelope >= 0.8 x raw secretstream", ok_speed)
    results.target("envelope peak RSS < 64 MiB", ok_memory)
    publish(results)
    return 0 if ok_speed and ok_memory else 1


if __name__ == "__main__":
    raise SystemExit(main())
