"""Model archives: deterministic packing, checksum and member checks, atomic import."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from pathlib import Path

import msgspec
import numpy as np
import pytest

from ktrdr_lib.errors import ConfigError, DataError, NotFoundError
from ktrdr_lib.models.archive import (
    ARCHIVE_FILES,
    OPTIONAL_ARCHIVE_FILES,
    import_model_archive,
    pack_model_version,
    sha256_hex,
)
from ktrdr_lib.models.store import ModelStore
from ktrdr_lib.strategy.spec import ModelSpec
from ktrdr_lib.training.module import FuzzyMLP


def _saved_version(root: Path) -> Path:
    spec = msgspec.convert({"type": "mlp", "architecture": {"hidden_layers": [4]}}, ModelSpec)
    module = FuzzyMLP(spec, 3)
    saved = ModelStore(root).save(
        strategy_name="demo",
        module=module,
        feature_names=["a", "b", "c"],
        scaler=None,
        model_spec_config=msgspec.to_builtins(spec),
        strategy_config={"name": "demo"},
        metrics={"test": {"accuracy": 0.5}},
        metadata={"operation_id": "op_1"},
    )
    return saved.path


def _tar(members: dict[str, bytes], *, kind: bytes = tarfile.REGTYPE) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.type = kind
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    return _saved_version(tmp_path / "host_models")


def test_pack_is_deterministic_and_holds_exactly_the_version_files(version_dir: Path) -> None:
    body, digest = pack_model_version(version_dir)
    again, digest_again = pack_model_version(version_dir)
    assert body == again
    assert digest == digest_again == sha256_hex(body)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == list(ARCHIVE_FILES)
    assert all(m.isreg() and m.mtime == 0 and m.uid == 0 for m in members)


def test_a_version_with_analytics_carries_them_through_the_archive(
    version_dir: Path, tmp_path: Path
) -> None:
    files = {"analytics.json": b'{"epochs": []}', "analytics.csv": b"epoch\n"}
    for name, data in files.items():
        (version_dir / name).write_bytes(data)
    body, digest = pack_model_version(version_dir)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = [m.name for m in tar.getmembers()]
    assert names == [*ARCHIVE_FILES, *OPTIONAL_ARCHIVE_FILES]
    imported = import_model_archive(body, digest, store=ModelStore(tmp_path / "l"), name="demo")
    for name, data in files.items():
        assert (imported.path / name).read_bytes() == data


def test_import_round_trip_loads_and_predicts_the_same(version_dir: Path, tmp_path: Path) -> None:
    body, digest = pack_model_version(version_dir)
    local = ModelStore(tmp_path / "local")
    first = import_model_archive(body, digest.upper(), store=local, name="demo")
    second = import_model_archive(
        body, digest, store=local, name="demo", extra_metadata={"host_session_id": "s1"}
    )
    assert (first.model_id, second.model_id) == ("demo/v1", "demo/v2")
    assert first.size_bytes > 0
    original = ModelStore(version_dir.parent.parent).load("demo", 1)
    imported = local.load("demo", 2)
    assert imported.metadata["host_session_id"] == "s1"
    assert imported.metadata["operation_id"] == "op_1"
    features = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(
        imported.predict_proba(features), original.predict_proba(features), rtol=1e-6
    )
    assert sorted(p.name for p in (local.root / "demo").iterdir()) == ["v1", "v2"]


def test_checksum_mismatch_is_a_data_error_and_stores_nothing(
    version_dir: Path, tmp_path: Path
) -> None:
    body, _ = pack_model_version(version_dir)
    local = ModelStore(tmp_path / "local")
    with pytest.raises(DataError, match="checksum mismatch"):
        import_model_archive(body, "0" * 64, store=local, name="demo")
    assert local.versions("demo") == []


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"../evil.json": b"{}"}, "unexpected member"),
        ({"sub/weights.pt": b"x"}, "unexpected member"),
        ({"/etc/passwd": b"x"}, "unexpected member"),
        ({"metadata.json": b"{}"}, "missing"),
    ],
)
def test_bad_members_are_refused(tmp_path: Path, members: dict[str, bytes], reason: str) -> None:
    data = _tar(members)
    local = ModelStore(tmp_path / "local")
    with pytest.raises(DataError, match=reason):
        import_model_archive(data, sha256_hex(data), store=local, name="demo")
    assert not (tmp_path / "evil.json").exists()
    assert local.versions("demo") == []
    leftovers = list((local.root / "demo").iterdir()) if (local.root / "demo").exists() else []
    assert leftovers == []


def test_links_duplicates_and_size_bombs_are_refused(version_dir: Path, tmp_path: Path) -> None:
    local = ModelStore(tmp_path / "local")
    files = {name: (version_dir / name).read_bytes() for name in ARCHIVE_FILES}
    link = _tar({"weights.pt": b""}, kind=tarfile.SYMTYPE)
    with pytest.raises(DataError, match="not a regular file"):
        import_model_archive(link, sha256_hex(link), store=local, name="demo")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [*ARCHIVE_FILES, "metrics.json"]:
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    twice = buffer.getvalue()
    with pytest.raises(DataError, match="appears twice"):
        import_model_archive(twice, sha256_hex(twice), store=local, name="demo")
    body, digest = pack_model_version(version_dir)
    with pytest.raises(DataError, match="more than 100 bytes"):
        import_model_archive(body, digest, store=local, name="demo", max_bytes=100)
    assert local.versions("demo") == []


def test_garbage_and_unloadable_weights_are_refused(version_dir: Path, tmp_path: Path) -> None:
    local = ModelStore(tmp_path / "local")
    garbage = b"not a tarball at all"
    with pytest.raises(DataError, match=r"not a valid tar\.gz"):
        import_model_archive(garbage, sha256_hex(garbage), store=local, name="demo")
    files = {name: (version_dir / name).read_bytes() for name in ARCHIVE_FILES}
    files["weights.pt"] = b"corrupt weights"
    broken = _tar(files)
    with pytest.raises(DataError, match="does not load"):
        import_model_archive(broken, sha256_hex(broken), store=local, name="demo")
    assert local.versions("demo") == []


def test_bad_name_and_missing_directory(version_dir: Path, tmp_path: Path) -> None:
    body, digest = pack_model_version(version_dir)
    with pytest.raises(ConfigError):
        import_model_archive(body, digest, store=ModelStore(tmp_path), name="../up")
    with pytest.raises(NotFoundError):
        pack_model_version(tmp_path / "nowhere")
    (version_dir / "scaler.json").unlink()
    with pytest.raises(DataError, match=r"missing scaler\.json"):
        pack_model_version(version_dir)


def _gz_after_header(kind: bytes, name: str, announced: int, present: int) -> bytes:
    """A gzip'd tar stream: one header of ``kind`` announcing ``announced`` bytes, followed by
    ``present`` zero bytes (a few KB once compressed)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = announced
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    return gzip.compress(header + bytes(present))


@pytest.mark.parametrize(
    ("kind", "name", "what"),
    [
        (tarfile.XHDTYPE, "././@PaxHeader", "a PAX extended header"),
        (tarfile.XGLTYPE, "././@PaxHeader", "a PAX global header"),
        (tarfile.GNUTYPE_LONGNAME, "././@LongLink", "a GNU long name"),
        (tarfile.REGTYPE, "weights.pt", "more than 1048576 bytes"),
    ],
)
def test_a_huge_header_payload_is_refused_before_it_is_read(
    tmp_path: Path, kind: bytes, name: str, what: str
) -> None:
    # The header announces 1 GiB; 16 MiB of it are really there. Reading the header's payload
    # (what tarfile does before it shows the member) would hold at least those 16 MiB.
    data = _gz_after_header(kind, name, announced=1 << 30, present=16 << 20)
    assert len(data) < 64 << 10
    local = ModelStore(tmp_path / "local")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=what):
            import_model_archive(
                data, sha256_hex(data), store=local, name="demo", max_bytes=1 << 20
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20
    assert local.versions("demo") == []


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.LNKTYPE, "a hard link"),
        (tarfile.SYMTYPE, "a symbolic link"),
        (tarfile.CHRTYPE, "a character device"),
        (tarfile.BLKTYPE, "a block device"),
        (tarfile.FIFOTYPE, "a FIFO"),
        (tarfile.DIRTYPE, "a directory"),
        (tarfile.CONTTYPE, "a contiguous file"),
        (tarfile.GNUTYPE_SPARSE, "a GNU sparse file"),
    ],
)
def test_only_plain_regular_files_are_members(tmp_path: Path, kind: bytes, what: str) -> None:
    data = _gz_after_header(kind, "weights.pt", announced=0, present=1024)
    with pytest.raises(DataError, match=rf"'weights\.pt' is not a regular file but {what}"):
        import_model_archive(
            data, sha256_hex(data), store=ModelStore(tmp_path / "local"), name="demo"
        )


def test_a_member_cut_short_or_a_broken_header_is_refused(
    version_dir: Path, tmp_path: Path
) -> None:
    local = ModelStore(tmp_path / "local")
    cut = _gz_after_header(tarfile.REGTYPE, "weights.pt", announced=4096, present=100)
    with pytest.raises(DataError, match=r"'weights\.pt' is cut short"):
        import_model_archive(cut, sha256_hex(cut), store=local, name="demo")
    body, _ = pack_model_version(version_dir)
    raw = bytearray(gzip.decompress(body))
    raw[148:156] = b"0000000\0"  # the first header's checksum
    broken = gzip.compress(bytes(raw))
    with pytest.raises(DataError, match=r"not a valid tar\.gz \(bad checksum\)"):
        import_model_archive(broken, sha256_hex(broken), store=local, name="demo")
    assert local.versions("demo") == []


def test_an_archive_declaring_a_huge_network_is_refused_before_it_is_built(
    version_dir: Path, tmp_path: Path
) -> None:
    files = {name: (version_dir / name).read_bytes() for name in ARCHIVE_FILES}
    config = msgspec.json.decode(files["model_config.json"])
    config["model_spec"]["architecture"]["hidden_layers"] = [1_000_000, 1_000_000]  # 4 TB
    files["model_config.json"] = msgspec.json.encode(config)
    hostile = _tar(files)
    local = ModelStore(tmp_path / "local")
    with pytest.raises(DataError, match=r"does not load: .*trainable parameters \(mlp\)"):
        import_model_archive(hostile, sha256_hex(hostile), store=local, name="demo")
    assert local.versions("demo") == []
