"""GCIDE in dictd's format (a gzip-compatible .dict.dz and its base-64 .index): one plain text per definition,
markup stripped; the real dictionary when dict-gcide is installed."""

import os
from pathlib import Path

import pytest
from tests.conftest import require_real_data, write_dictd
from tests.conftest import dictd_number as _number

from datamodules.base import CorruptDataError, DataNotFoundError
from datamodules.gcide import SYSTEM_GCIDE, decode_dictd_number, gcide_definitions, read_dictd, read_gcide

CAT = """cat \\cat\\ (k[a^]t), n. [AS. cat; akin to D. & Dan. kat, Sw.
   katt, Icel. k["o]ttr. Cf.
   {Kitten}.]
   1. (Zool.) Any animal belonging to the natural family
      {Felidae}. The domestic cat is {Felis domestica}.
      [1913 Webster +PJC]

   Note: The domestic cat includes many varieties named from
         their place of origin.
         [1913 Webster]

               Laying aside their often rancorous debate over
               how best to preserve the panther. --Mark Derr
         [PJC]

   2. (Naut.)
      (a) A strong vessel with a narrow stern, used in the caf['e] trade.
      (b) A strong tackle used to draw an anchor up. --Totten.
          [1913 Webster]

   {Cat nap}, a very short sleep. [Colloq.]

   Syn: tabby, puss.
        [WordNet 1.5 +PJC] Catopter
"""
DILUENT = """Diluent \\Dil"u*ent\\, a. [L. diluens, p. pr. diluere. See
   {Dilute}.]
   Diluting; making thinner or weaker by admixture, esp. of
   water. --Arbuthnot.
   [1913 Webster]
"""


def test_dictd_numbers_are_base_64():
    assert decode_dictd_number("A") == 0 and decode_dictd_number("Bb8") == 64 * 64 + 27 * 64 + 60
    assert all(decode_dictd_number(_number(n)) == n for n in (0, 63, 64, 4095, 39_952_321))
    with pytest.raises(ValueError, match="not a dictd base-64 number"):
        decode_dictd_number("a-b")


def test_definitions_one_text_each_markup_stripped():
    assert gcide_definitions(CAT) == [
        "Any animal belonging to the natural family Felidae. The domestic cat is Felis domestica.",
        "A strong vessel with a narrow stern, used in the cafe trade.",
        "A strong tackle used to draw an anchor up.",
        "Cat nap, a very short sleep.",
    ]  # the note, the quotation, the synonyms, "(Naut.)" alone and the glued "Catopter" are gone
    assert gcide_definitions(DILUENT) == ["Diluting; making thinner or weaker by admixture, esp. of water."]


def test_read_dictd_uses_the_index_once_per_entry_skips_the_database_entries_and_bad_bytes(tmp_path):
    odd = b"Odd \\Odd\\, a.\n   Quoted \x92strange\x92 in a Windows code page.\n   [1913 Webster]\n"
    path = write_dictd(tmp_path / "d", {"cat": CAT.encode(), "Diluent": DILUENT.encode(), "odd": odd}, aliases={"Felidae": "cat"})
    entries = read_dictd(path)
    assert len(entries) == 3 and entries[0] == CAT  # "Felidae" points at cat's entry: read once
    assert read_gcide(path) == gcide_definitions(CAT) + gcide_definitions(DILUENT) + ["Quoted \u2019strange\u2019 in a Windows code page."]
    assert read_gcide(path, max_texts=2) == gcide_definitions(CAT)[:2]


def test_missing_and_corrupt_databases_are_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="apt-get install dict-gcide"):
        read_gcide(tmp_path / "nowhere.dict.dz")
    path = write_dictd(tmp_path / "d", {"cat": CAT.encode()})
    (tmp_path / "d" / "gcide.index").unlink()
    with pytest.raises(DataNotFoundError, match="no index beside it"):
        read_gcide(path)
    write_dictd(tmp_path / "d", {"cat": CAT.encode()})
    (tmp_path / "d" / "gcide.index").write_text("cat\tA\tzzzz\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"gcide.index, line 1: the entry ends at byte .* past the end"):
        read_gcide(path)
    (tmp_path / "d" / "gcide.index").write_text("cat A\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match=r"line 1: expected 'headword TAB offset TAB length'"):
        read_gcide(path)
    path.write_bytes(b"not gzip at all")
    write_index = tmp_path / "d" / "gcide.index"
    write_index.write_text("cat\tA\tB\n", encoding="utf-8")
    with pytest.raises(CorruptDataError, match="not a readable dictzip/gzip file"):
        read_gcide(path)


@pytest.mark.real_data
def test_real_gcide_gives_plain_definitions():
    path = Path(os.environ.get("ZOO_GCIDE") or SYSTEM_GCIDE)
    require_real_data(path.is_file(), f"GCIDE in {path} (apt-get install dict-gcide)")
    texts = read_gcide(path)
    assert len(texts) > 150_000 and len(set(texts)) == len(texts)
    assert "Any team or party of people." in texts
    marked = [t for t in texts if "{" in t or "}" in t or "[1913" in t or "[WordNet" in t]
    assert not marked, marked[:3]
    assert sum(len(t.split()) for t in texts) > 2_000_000
