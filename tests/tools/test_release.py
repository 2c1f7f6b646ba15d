"""``python -m zoo.tools.release``: exactly the manifest's weights files, checked, in a folder, and the ``gh``
commands that publish them where the downloads look (nothing is run against GitHub)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from zoo.hub.download import RELEASE, REPOSITORY, sha256_file
from zoo.hub.manifest import SHIPPED_DIR
from zoo.hub.pretrained import read_manifest
from zoo.tools import release

REPO = Path(__file__).resolve().parents[2]
SHIPPED = read_manifest(SHIPPED_DIR / "manifest.json")["weights"]


def test_the_release_folder_holds_exactly_the_manifests_files_and_the_upload_command_names_them(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)  # the files come from the clone's checkpoints/
    out = tmp_path / "dist" / "weights"
    assert release.main(["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(e["file"] for e in SHIPPED)
    for e in SHIPPED:
        assert sha256_file(out / e["file"]) == e["sha256"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{len(SHIPPED)} files, {sum(e['size_bytes'] for e in SHIPPED) / 1e6:.1f} MB, checked against the manifest, in {out}"
    create, upload = (shlex.split(line) for line in printed[-2:])
    assert create[:4] == ["gh", "release", "create", RELEASE] and create[create.index("--repo") + 1] == REPOSITORY
    assert upload[:4] == ["gh", "release", "upload", RELEASE] and upload[-3:] == ["--repo", REPOSITORY, "--clobber"]
    assert upload[4:-3] == [str(out / e["file"]) for e in sorted(SHIPPED, key=lambda e: e["file"])]

    assert release.main(["--out", str(out)]) == 0  # again: the checked files are kept as they are


def test_a_folder_with_other_files_a_changed_file_or_a_missing_one_is_refused(tmp_path, monkeypatch):
    entry = SHIPPED[0]
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "old.safetensors").write_bytes(b"old")
    with pytest.raises(SystemExit, match=r"holds files the manifest does not name: old.safetensors"):
        release.main(["--out", str(tmp_path / "stale")])

    own = tmp_path / "own"  # $ZOO_WEIGHTS_DIR is searched first: a changed copy there is refused, nothing written
    own.mkdir()
    data = bytearray((REPO / "checkpoints" / entry["file"]).read_bytes())
    data[100] ^= 0x01
    (own / entry["file"]).write_bytes(bytes(data))
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(own))
    out = tmp_path / "out"
    with pytest.raises(release.ReleaseRefused, match=rf"{own / entry['file']} does not match the manifest"):
        release.write_release(out)
    assert list(out.iterdir()) == []  # no temporary file either

    monkeypatch.setattr(release, "shipped_places", lambda: [tmp_path / "empty"])
    with pytest.raises(release.ReleaseRefused, match=rf"not on this machine: .*{entry['file']}"):
        release.write_release(out)
