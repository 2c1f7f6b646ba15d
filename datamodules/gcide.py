"""GCIDE, the Collaborative International Dictionary of English (Webster's 1913 and WordNet), as plain-text
definitions: more unlabelled English for BERT's pre-training.

Debian's ``dict-gcide`` installs it in dictd's format: ``/usr/share/dictd/gcide.index`` (one line per headword:
``headword TAB offset TAB length``, offset and length in dictd's base-64 digits) and ``gcide.dict.dz`` (the
entries' text, dictzip-compressed: a gzip file with a seek table, so Python's ``gzip`` reads it whole). Several
headwords point at one entry; ``00-database-*`` entries are the database's own description.

``read_gcide`` returns one text per definition: each numbered sense ("1.", "(a)") and each defined phrase
("{Cat nap}, a very short sleep.") of every entry, its markup stripped: the headword line with its
pronunciation and etymology, source tags ("[1913 Webster]"), usage labels ("[Obs.]"), the field label that
opens a sense ("(Zool.)"), braces, the accent codes ("caf['e]" -> "cafe") and attributions ("--Milton.").
Quotations (indented blocks), notes ("Note:") and synonym lists ("Syn:") are not definitions and are dropped.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from datamodules.base import CorruptDataError, DataNotFoundError

__all__ = ["SYSTEM_GCIDE", "decode_dictd_number", "gcide_definitions", "locate_gcide", "read_dictd", "read_gcide"]

SYSTEM_GCIDE = "/usr/share/dictd/gcide.dict.dz"
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_MIN_WORDS = 3  # a shorter "definition" is a cross-reference fragment ("See Bore.")

_TAG_LINE = re.compile(r"^\s*\[[^\]\n]*\][^\n]*$", re.MULTILINE)  # "[1913 Webster]", sometimes with the next headword glued on
_SENSE = re.compile(r"^\s*(?:\d+\.|\([a-z]\))\s+", re.MULTILINE)  # "1. " or "(a) " opening a line
_ACCENT = re.compile(r"\[(?:['\"`=~^.]([A-Za-z]{1,2})|([A-Za-z]{1,2})[\^~])\]")  # ['e], [a^], ["o], [=o]; not "[R.]"
_BRACKETS = re.compile(r"\[[^\]]*\]")  # usage labels, etymologies
_PRONUNCIATION = re.compile(r"\\[^\\\n]*\\")
_FIELD = re.compile(r"^(?:\((?:[A-Z][\w.]*\.?\s*)+\)\s*)+")  # "(Zool.) ", "(Naut.) (Far.) " opening a sense
_ATTRIBUTION = re.compile(r"\s--(?=[A-Z])[\w.'&]+(?:\s[A-Z][\w.'&]*)*")  # " --Arbuthnot.", " --Mark Derr"


def decode_dictd_number(digits: str) -> int:
    """A number in dictd's base-64 (``A``..``Z``, ``a``..``z``, ``0``..``9``, ``+``, ``/``): ``"Bb8"`` -> 7,100."""
    value = 0
    for c in digits:
        if c not in _B64:
            raise ValueError(f"{digits!r} is not a dictd base-64 number")
        value = value * 64 + _B64[c]
    return value


def locate_gcide(path: str | os.PathLike | None = None) -> Path:
    """The ``.dict.dz`` (or ``.dict``) file: ``path``, else ``$ZOO_DATA_DIR/gcide/gcide.dict.dz``, else Debian's."""
    if path is not None:
        candidates = [Path(path).expanduser()]
    else:
        env = os.environ.get("ZOO_DATA_DIR")
        candidates = ([Path(env) / "gcide" / "gcide.dict.dz"] if env else []) + [Path(SYSTEM_GCIDE)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(
        f"no GCIDE dictionary at {', '.join(map(str, candidates))}.\n"
        "Install Debian's dict-gcide (apt-get install dict-gcide), or put gcide.dict.dz and gcide.index\n"
        "(dictd's format) in $ZOO_DATA_DIR/gcide, or name the .dict.dz file."
    )


def _index_of(data_path: Path) -> Path:
    name = data_path.name.removesuffix(".dz").removesuffix(".dict")
    return data_path.with_name(name + ".index")


def read_dictd(path: str | os.PathLike) -> list[str]:
    """The entries of a dictd database, in file order, each once (however many headwords point at it); the
    database's own ``00-database-*`` entries left out. ``path`` is the ``.dict.dz`` or ``.dict`` file; its
    ``.index`` lies beside it."""
    path = Path(path)
    index = _index_of(path)
    if not index.is_file():
        raise DataNotFoundError(f"{path} has no index beside it: dictd's format keeps the entries' offsets in {index}")
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".dz" else path.read_bytes()
    except (OSError, EOFError) as e:  # not gzip, truncated
        raise CorruptDataError(f"{path} is not a readable dictzip/gzip file: {e}") from None
    spans: set[tuple[int, int]] = set()
    with open(index, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\n").split("\t")
            if fields == [""]:
                continue
            if len(fields) != 3:
                raise CorruptDataError(f"{index}, line {number}: expected 'headword TAB offset TAB length', got {line.strip()!r}")
            if fields[0].startswith("00-database") or fields[0].startswith("00-"):
                continue
            try:
                start, length = decode_dictd_number(fields[1]), decode_dictd_number(fields[2])
            except ValueError as e:
                raise CorruptDataError(f"{index}, line {number}: {e}") from None
            if start + length > len(raw):
                raise CorruptDataError(f"{index}, line {number}: the entry ends at byte {start + length}, past the end of {path} ({len(raw)} bytes)")
            spans.add((start, length))
    out = []
    for start, length in sorted(spans):
        chunk = raw[start : start + length]
        try:
            out.append(chunk.decode("utf-8"))
        except UnicodeDecodeError:  # a few stray Windows-1252 quotes in GCIDE 0.48
            out.append(chunk.decode("cp1252", errors="replace"))
    return out


def _clean(text: str) -> str:
    text = _ACCENT.sub(lambda m: m.group(1) or m.group(2), text)
    text = _BRACKETS.sub(" ", text)
    if "]" in text:  # the end of an etymology begun on a line dropped before: keep what follows it
        text = text.rsplit("]", 1)[1]
    text = text.split("[", 1)[0]  # a label left open
    text = _PRONUNCIATION.sub(" ", text)
    text = text.replace("{", "").replace("}", "")
    text = _ATTRIBUTION.sub(" ", " " + text)
    text = " ".join(text.split())
    return _FIELD.sub("", text).strip()


def gcide_definitions(entry: str) -> list[str]:
    """One entry's text -> its definitions as plain text (see the module's docstring)."""
    lines = _ACCENT.sub(lambda m: m.group(1) or m.group(2), entry).strip("\n").split("\n")
    if not lines or not lines[0].strip():
        return []
    body = "\n".join(lines[1:])
    # The etymology may run on from the headword line: "[OF. esponge, ... Cf. {Fungus}.]"
    if "[" in lines[0] and "]" not in lines[0].split("[", 1)[1]:
        close = body.find("]")
        body = body[close + 1 :] if close >= 0 else body
    body = _TAG_LINE.sub("", body)
    out = []
    for block in re.split(r"\n\s*\n", body):
        first = next((line for line in block.split("\n") if line.strip()), "")
        indent = len(first) - len(first.lstrip())
        stripped = first.strip()
        if not stripped or indent >= 11 or stripped.startswith(("Note:", "Syn:", "--")):
            continue  # a quotation, a note, a synonym list
        for sense in _SENSE.split(block):
            sense_lines = [line for line in sense.split("\n") if len(line) - len(line.lstrip()) < 11 or not line.strip()]
            text = _clean("\n".join(sense_lines))  # quotations inside a sense dropped with their deep indent
            if len(text.split()) >= _MIN_WORDS:
                out.append(text)
    return out


def read_gcide(path: str | os.PathLike | None = None, *, max_texts: int = 0) -> list[str]:
    """Every definition of GCIDE (``locate_gcide(path)``), in file order, each distinct text once.

    Args:
        path: the ``.dict.dz`` file; None: ``$ZOO_DATA_DIR/gcide/gcide.dict.dz`` or Debian's.
        max_texts: keep the first this many definitions (0: all), for quick runs.
    """
    seen: dict[str, None] = {}
    for entry in read_dictd(locate_gcide(path)):
        for text in gcide_definitions(entry):
            seen.setdefault(text)
            if max_texts and len(seen) >= max_texts:
                return list(seen)
    return list(seen)
