from __future__ import annotations

from pathlib import Path

import pytest

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.storage.documents import LocalStorage, join_uri, storage_for


def test_join_uri_never_doubles_slashes() -> None:
    assert join_uri("s3://b/p/", "/windows/", "x.json") == "s3://b/p/windows/x.json"


def test_local_storage_writes_atomically_and_lists(tmp_path: Path) -> None:
    store = storage_for(tmp_path.as_uri())
    assert isinstance(store, LocalStorage)
    uri = join_uri(tmp_path.as_uri(), "a", "doc.json")
    store.write_text(uri, "one")
    store.write_text(uri, "two")
    assert store.read_text(uri) == "two"
    assert store.exists(uri) and not store.exists(uri + ".missing")
    assert store.list(join_uri(tmp_path.as_uri(), "a")) == [uri]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["doc.json"]  # no temp files left
    with pytest.raises(FileNotFoundError):
        store.read_text(uri + ".missing")


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(WarpSpeedConfigError, match=r"\(file://...\) or s3://bucket/prefix"):
        storage_for("gs://bucket/x")
