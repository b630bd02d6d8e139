"""The filesystem blob store: atomic writes, no leftovers, no times, no traversal."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tipbox.config import Config
from tipbox.storage import (
    TEMP_PREFIX,
    BlobNotFoundError,
    BlobStore,
    FilesystemBlobStore,
    blob_store_for,
    check_blob_id,
    new_blob_id,
)

REPO = Path(__file__).resolve().parent.parent


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_is_a_blob_store(blob_store: FilesystemBlobStore) -> None:
    store: BlobStore = blob_store
    assert check_blob_id(store.new_id())


def test_write_then_read(blob_store: FilesystemBlobStore) -> None:
    blob_id = blob_store.new_id()
    assert not blob_store.exists(blob_id)
    with blob_store.writer(blob_id) as out:
        out.write(b"cipher")
        out.write(b"text" * 1000)
    assert blob_store.exists(blob_id)
    assert blob_store.size(blob_id) == 6 + 4000
    with blob_store.open(blob_id) as f:
        assert f.read() == b"cipher" + b"text" * 1000
    assert blob_store.path(blob_id) == blob_store.root / blob_id[:2] / blob_id


def test_blob_ids_are_random_hex() -> None:
    ids = {new_blob_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(check_blob_id(i) == i for i in ids)


def test_exception_mid_write_leaves_nothing(blob_store: FilesystemBlobStore) -> None:
    blob_id = blob_store.new_id()

    def upload_interrupted() -> None:
        with blob_store.writer(blob_id) as out:
            out.write(b"half a blob")
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        upload_interrupted()
    assert not blob_store.exists(blob_id)
    assert _all_files(blob_store.root) == []


def test_failed_flush_leaves_nothing(
    blob_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    blob_id = blob_store.new_id()
    with pytest.raises(OSError, match="No space"), blob_store.writer(blob_id) as out:
        out.write(b"x" * 100)
    assert not blob_store.exists(blob_id)
    assert _all_files(blob_store.root) == []


def test_crash_mid_write_leaves_only_a_stale_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    blob_id = "0123456789abcdef0123456789abcdef"
    # A process that dies without unwinding: no except, no finally, no cleanup.
    script = textwrap.dedent(
        f"""
        import os
        from tipbox.storage import FilesystemBlobStore
        store = FilesystemBlobStore({str(root)!r})
        with store.writer({blob_id!r}) as out:
            out.write(b"partial")
            out.flush()
            os._exit(3)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], env=env, check=False)
    assert result.returncode == 3
    store = FilesystemBlobStore(root)
    assert not store.exists(blob_id)
    assert list(store.ids()) == []
    (leftover,) = _all_files(root)
    assert leftover.name.startswith(TEMP_PREFIX)
    # Young temp files may be uploads in progress; only old ones are stale.
    assert store.stale_temp_files() == []
    assert store.stale_temp_files(max_age_seconds=0) == [leftover]
    assert store.cleanup_incomplete(max_age_seconds=0) == 1
    assert _all_files(root) == []


def test_temp_file_is_private_and_beside_the_blob(blob_store: FilesystemBlobStore) -> None:
    blob_id = blob_store.new_id()
    with blob_store.writer(blob_id) as out:
        out.write(b"x")
        (temp,) = _all_files(blob_store.root)
        assert temp.parent == blob_store.path(blob_id).parent
        assert temp.name.startswith(TEMP_PREFIX)
        assert stat.S_IMODE(temp.stat().st_mode) == 0o600


def test_permissions(blob_store: FilesystemBlobStore) -> None:
    old = os.umask(0o022)
    try:
        blob_id = blob_store.new_id()
        with blob_store.writer(blob_id) as out:
            out.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(blob_store.path(blob_id).stat().st_mode) == 0o600
    assert stat.S_IMODE(blob_store.path(blob_id).parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(blob_store.root.stat().st_mode) == 0o700


def test_times_are_normalised(blob_store: FilesystemBlobStore) -> None:
    blob_id = blob_store.new_id()
    with blob_store.writer(blob_id) as out:
        out.write(b"x" * 10)
    path = blob_store.path(blob_id)
    assert path.stat().st_mtime == 0
    assert path.stat().st_atime == 0
    assert path.parent.stat().st_mtime == 0
    assert blob_store.root.stat().st_mtime == 0
    with blob_store.open(blob_id) as f:
        f.read()
    # Reading opens with O_NOATIME: the access time still says nothing.
    assert path.stat().st_atime == 0
    blob_store.delete(new_blob_id())  # a miss changes nothing
    other = blob_store.new_id()
    with blob_store.writer(other) as out:
        out.write(b"y")
    blob_store.delete(other)
    assert blob_store.path(other).parent.stat().st_mtime == 0


def test_writes_are_flushed(
    blob_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    blob_id = blob_store.new_id()
    with blob_store.writer(blob_id) as out:
        out.write(b"x")
    # The new fan-out directory's parent, then the file, then the directory after the rename.
    assert synced == ["dir", "file", "dir"]


def test_never_overwrites(blob_store: FilesystemBlobStore) -> None:
    blob_id = blob_store.new_id()
    with blob_store.writer(blob_id) as out:
        out.write(b"first")
    with pytest.raises(FileExistsError), blob_store.writer(blob_id) as out:
        out.write(b"second")
    with blob_store.open(blob_id) as f:
        assert f.read() == b"first"
    assert len(_all_files(blob_store.root)) == 1


def test_ids_and_delete(blob_store: FilesystemBlobStore) -> None:
    assert list(blob_store.ids()) == []
    written = sorted(blob_store.new_id() for _ in range(20))
    for blob_id in written:
        with blob_store.writer(blob_id) as out:
            out.write(blob_id.encode())
    # Strays are not blobs.
    (blob_store.root / "zz").mkdir()
    (blob_store.root / written[0][:2] / "notes.txt").write_text("x")
    assert list(blob_store.ids()) == written
    assert blob_store.delete(written[0]) is True
    assert blob_store.delete(written[0]) is False
    assert list(blob_store.ids()) == written[1:]
    with pytest.raises(BlobNotFoundError):
        blob_store.open(written[0])
    with pytest.raises(BlobNotFoundError):
        blob_store.size(written[0])


@pytest.mark.parametrize(
    "bad",
    [
        "../../../../etc/passwd",
        "..",
        "",
        "0123456789abcdef0123456789abcde",  # 31
        "0123456789abcdef0123456789abcdef0",  # 33
        "0123456789ABCDEF0123456789ABCDEF",  # upper case
        "0123456789abcdef0123456789abcdef\n",
        "/0123456789abcdef0123456789abcde",
        "0123456789abcdef/123456789abcdef",
        "0123456789abcdef0123456789abcdeg",
        "\uff10123456789abcdef0123456789abcdef",  # a full-width digit zero
    ],
)
def test_bad_ids_are_refused(blob_store: FilesystemBlobStore, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid blob id"):
        blob_store.exists(bad)
    with pytest.raises(ValueError, match="invalid blob id"):
        blob_store.open(bad)
    with pytest.raises(ValueError, match="invalid blob id"):
        blob_store.size(bad)
    with pytest.raises(ValueError, match="invalid blob id"):
        blob_store.delete(bad)
    with pytest.raises(ValueError, match="invalid blob id"), blob_store.writer(bad):
        pass
    assert not blob_store.root.exists()


def test_symlinked_blob_is_not_followed(blob_store: FilesystemBlobStore, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere"
    secret.write_bytes(b"not a blob")
    blob_id = blob_store.new_id()
    blob_store.path(blob_id).parent.mkdir(parents=True)
    blob_store.path(blob_id).symlink_to(secret)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        blob_store.open(blob_id)


def test_a_shared_group_store_lets_the_group_read_and_nobody_else(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs", shared_group=True)
    blob_id = store.new_id()
    with store.writer(blob_id) as out:
        out.write(b"ciphertext")
    assert stat.S_IMODE(store.path(blob_id).stat().st_mode) == 0o640
    folder_mode = store.path(blob_id).parent.stat().st_mode
    assert stat.S_IMODE(folder_mode) == 0o2770  # setgid: new blobs keep the group
    assert Config.for_data_dir(tmp_path).blob_group_shared is False
    shared = Config.from_env({"TIPBOX_DATA_DIR": str(tmp_path), "TIPBOX_BLOB_GROUP_SHARED": "1"})
    assert blob_store_for(shared)._file_mode == 0o640
