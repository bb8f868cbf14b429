"""Model archives: a stored model version as one deterministic ``tar.gz``, and back.

The training host sends a saved version to the orchestrator as an archive; the orchestrator
checks its SHA-256 and imports it into its own :class:`~ktrdr_lib.models.store.ModelStore`.

An archive holds exactly the files of a version directory (``weights.pt``,
``model_config.json``, ``strategy.json``, ``features.json``, ``scaler.json``, ``metrics.json``,
``metadata.json``) at its root, as regular files, sorted by name, with zeroed times and owners,
so packing the same directory twice gives the same bytes (and the same checksum).

Importing never trusts the archive: the checksum is checked before anything is read (it proves
the bytes are those the sender announced, not who sent them); every member must be a plain
regular file (no directories, links, devices, PAX or GNU long-name headers) with one of the
known file names (no paths, so nothing can land outside the target), appear once, and fit the
size limit, all checked from its header before anything after it is decompressed; the unpacked
version must load as a model (whose declared network is checked against its features and the
run cap on trainable parameters, ``KTRDR_MAX_PARAMETERS``, before it is built). It is then published
as the next version of ``name`` by the store's temp-directory-and-rename protocol, so it is
never seen half-written.

Example:
    >>> body, digest = pack_model_version(store.root / "rsi_mlp" / "v3")  # doctest: +SKIP
    >>> saved = import_model_archive(body, digest, store=local_store, name="rsi_mlp")
    ... # doctest: +SKIP
    >>> saved.model_id  # doctest: +SKIP
    'rsi_mlp/v1'
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import shutil
import tarfile
import uuid
import zlib
from pathlib import Path
from typing import Any

import msgspec

from ktrdr_lib.errors import DataError, KtrdrError
from ktrdr_lib.models.layout import (
    METADATA,
    OPTIONAL_FILES,
    VERSION_FILES,
    check_name,
    directory_size,
    publish_version,
)
from ktrdr_lib.models.store import ModelStore, SavedModel

__all__ = [
    "ARCHIVE_FILES",
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "OPTIONAL_ARCHIVE_FILES",
    "import_model_archive",
    "pack_model_version",
    "sha256_hex",
]

ARCHIVE_FILES: tuple[str, ...] = tuple(sorted(VERSION_FILES))
# Files a version holds only sometimes (detailed analytics): packed when present.
OPTIONAL_ARCHIVE_FILES: tuple[str, ...] = tuple(sorted(OPTIONAL_FILES))
DEFAULT_MAX_ARCHIVE_BYTES = 1 << 30  # unpacked bytes; a guard against decompression bombs


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def pack_model_version(path: Path) -> tuple[bytes, str]:
    """Pack a model version directory into a deterministic ``tar.gz``.

    Args:
        path: a version directory (``.../{name}/v{N}``) holding every file in
            :data:`ARCHIVE_FILES`.

    Returns:
        ``(body, sha256)``: the archive's bytes and their SHA-256 as lowercase hex.

    Raises:
        NotFoundError: ``path`` is not a directory.
        DataError: a file of the version is missing.
    """
    from ktrdr_lib.errors import NotFoundError

    path = Path(path)
    if not path.is_dir():
        raise NotFoundError(f"no model version directory at {path}; pass a stored version's path")
    missing = [name for name in ARCHIVE_FILES if not (path / name).is_file()]
    if missing:
        raise DataError(
            f"cannot pack {path}: missing {', '.join(missing)}. The version directory is "
            "incomplete; pack a complete version."
        )
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        present = [name for name in OPTIONAL_ARCHIVE_FILES if (path / name).is_file()]
        for name in (*ARCHIVE_FILES, *present):
            data = (path / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.type = tarfile.REGTYPE
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    body = buffer.getvalue()
    return body, sha256_hex(body)


def import_model_archive(
    data: bytes,
    expected_sha256: str,
    *,
    store: ModelStore,
    name: str,
    extra_metadata: dict[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
) -> SavedModel:
    """Verify an archive and publish it as the next version of ``name`` in ``store``.

    Args:
        data: the archive's bytes (as :func:`pack_model_version` makes them).
        expected_sha256: the SHA-256 the sender announced (hex, any case).
        store: the ModelStore to import into.
        name: the model name to publish under (usually the strategy name).
        extra_metadata: keys merged into the version's ``metadata.json`` (e.g.
            ``{"host_session_id": ...}``).
        max_bytes: the most unpacked bytes accepted.

    Returns:
        Where the imported version went.

    Raises:
        ConfigError: ``name`` is not an identifier.
        DataError: the checksum does not match, the archive is not a valid ``tar.gz``, it holds
            anything but the known files (or a file twice, or too many bytes), a file is
            missing, or the unpacked version does not load as a model.
    """
    check_name(name)
    actual = sha256_hex(data)
    if not hmac.compare_digest(actual, expected_sha256.strip().lower()):
        raise DataError(
            f"model archive checksum mismatch: expected sha256 {expected_sha256}, got "
            f"{actual} ({len(data)} bytes). The download was corrupted or altered; "
            "download it again."
        )
    files = _read_members(data, max_bytes=max_bytes)
    if extra_metadata:
        files[METADATA] = _merged_metadata(files[METADATA], extra_metadata)

    strategy_dir = store.root / name
    strategy_dir.mkdir(parents=True, exist_ok=True)
    staging_root = strategy_dir / f".tmp-{uuid.uuid4().hex}"
    version_dir = staging_root / name / "v1"
    try:
        version_dir.mkdir(parents=True)
        for file_name, content in files.items():
            (version_dir / file_name).write_bytes(content)
        _check_loads(staging_root, name)
        version = publish_version(version_dir, strategy_dir)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    path = strategy_dir / f"v{version}"
    return SavedModel(name, version, path, directory_size(path))


def _read_members(data: bytes, *, max_bytes: int) -> dict[str, bytes]:
    """The archive's files by name, after checking every member.

    The tar stream is read header by header from a gzip stream that never decompresses more
    than it is asked for (``tarfile`` itself would read a PAX or GNU long-name header's payload,
    of any announced size, before its caller sees the member). A header is refused before
    anything after it is read unless it is a plain regular file with a known name, seen once,
    whose size fits what is left of ``max_bytes``; the archive ends at the first zero block.
    """
    allowed = frozenset((*ARCHIVE_FILES, *OPTIONAL_ARCHIVE_FILES))
    files: dict[str, bytes] = {}
    left = max_bytes
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as stream:
            while True:
                block = stream.read(tarfile.BLOCKSIZE)
                if not block.strip(b"\0"):  # end-of-archive (or a stream cut short)
                    break
                member = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
                _check_member(member, allowed=allowed, seen=files, left=left, limit=max_bytes)
                content = stream.read(member.size)
                if len(content) != member.size:
                    raise _bad(f"member {member.name!r} is cut short")
                left -= member.size
                stream.read(-member.size % tarfile.BLOCKSIZE)  # padding to a whole block
                files[member.name] = content
    except KtrdrError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeDecodeError) as exc:
        raise _bad(f"it is not a valid tar.gz ({exc})") from exc
    missing = [name for name in ARCHIVE_FILES if name not in files]
    if missing:
        raise _bad(f"missing {', '.join(missing)}")
    return files


def _check_member(
    member: tarfile.TarInfo,
    *,
    allowed: frozenset[str],
    seen: dict[str, bytes],
    left: int,
    limit: int,
) -> None:
    """Refuse a header before its payload is read (see :func:`_read_members`)."""
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        kind = _MEMBER_KINDS.get(member.type, f"type {member.type!r}")
        raise _bad(f"member {member.name!r} is not a regular file but {kind}")
    if member.name not in allowed:
        raise _bad(f"unexpected member {member.name!r}")
    if member.name in seen:
        raise _bad(f"member {member.name!r} appears twice")
    if not 0 <= member.size <= left:
        raise _bad(f"it unpacks to more than {limit} bytes (member {member.name!r})")


_MEMBER_KINDS = {
    tarfile.DIRTYPE: "a directory",
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.XHDTYPE: "a PAX extended header",
    tarfile.XGLTYPE: "a PAX global header",
    tarfile.SOLARIS_XHDTYPE: "a Solaris extended header",
    tarfile.GNUTYPE_LONGNAME: "a GNU long name",
    tarfile.GNUTYPE_LONGLINK: "a GNU long link name",
    tarfile.GNUTYPE_SPARSE: "a GNU sparse file",
}


def _merged_metadata(raw: bytes, extra: dict[str, Any]) -> bytes:
    try:
        metadata = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise _bad(f"metadata.json is not JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise _bad("metadata.json is not a JSON object")
    return msgspec.json.format(msgspec.json.encode({**metadata, **extra}), indent=2)


def _check_loads(root: Path, name: str) -> None:
    """Load the unpacked version; any problem becomes a DataError about the archive."""
    try:
        ModelStore(root).load(name, 1)
    except KtrdrError as exc:
        raise _bad(f"the unpacked model does not load: {exc.detail}") from exc
    except Exception as exc:  # torch or JSON errors from a malformed file
        raise _bad(f"the unpacked model does not load: {type(exc).__name__}: {exc}") from exc


def _bad(reason: str) -> DataError:
    return DataError(
        f"bad model archive: {reason}. It must hold exactly {', '.join(ARCHIVE_FILES)} at its "
        f"root (and may hold {', '.join(OPTIONAL_ARCHIVE_FILES)}); download it again from the "
        "host."
    )
