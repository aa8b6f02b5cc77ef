"""English text normaliser and word error rate, for scoring any system's transcripts against references.

Every reference and every hypothesis, from every system, goes through the same `normalize()` before words are
compared, so that WER counts recognition errors rather than differences of writing style. It follows the
documented behaviour of the English normaliser published with Whisper:

- lowercase; diacritics removed; bracketed or parenthesised asides ("[laughs]", "(inaudible)") removed;
- contractions expanded ("won't" -> "will not", "it's" -> "it is", "they'd" -> "they would"); possessives
  keep their "s" ("john's" -> "johns");
- titles standardised to the spoken word ("mr" -> "mister", "dr" -> "doctor");
- British spellings to American ("colour" -> "color", "realise" -> "realize", "centre" -> "center", ...);
- numbers to digits, whichever way they were written: "twenty five" and "25" -> "25", "nineteen ninety" -> "1990",
  "four oh seven" -> "407", "two thousand and seven" -> "2007", "twenty first" -> "21st", "the eighties" ->
  "80s", "three point five" -> "3.5", "ten percent" -> "10%", "five dollars" -> "$5", "7:30" -> "730";
- punctuation stripped (dots kept only inside decimals), hesitations ("um", "uh", "hmm") removed, whitespace
  collapsed.

Numbers go to digits (not digits to words) because one digit string has one spelling, while spoken forms vary
("one hundred and five" / "one hundred five" / "a hundred five"). Adjacent spoken numbers that do not combine
arithmetically are read as a digit string, as people say years, times, codes and house numbers ("nineteen
eighty four", "seven thirty", "four twelve"), so "five five" -> "55"; such a string ends at four digits
("nineteen eighty four ten" -> "1984 10"). A lone "one" is a number too ("no one" -> "no 1"): harmless, since
both sides of a comparison are normalised alike.

WER is the word-level Levenshtein distance (substitutions + deletions + insertions) summed over a corpus and
divided by the number of reference words after normalisation.
"""
import re
import unicodedata
from decimal import Decimal
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

# ---------------------------------------------------------------- character level

_TRANSLATE = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": " - ", "\u2212": "-", "\u00a0": " ",
    "\u2026": " ", "\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "\u00f8": "o", "\u0142": "l", "\u00f0": "d",
    "\u00fe": "th",
})
_BRACKETED = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)|\{[^}]*\}")


def _strip_diacritics(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


# ---------------------------------------------------------------- contractions and titles

# Applied in order; whole words only. Specific forms before the general suffix rules.
_CONTRACTIONS: List[Tuple[str, str]] = [
    (r"won't", "will not"), (r"can't", "can not"), (r"cannot", "can not"), (r"shan't", "shall not"),
    (r"ain't", "aint"), (r"let's", "let us"), (r"y'all", "you all"), (r"ma'am", "madam"),
    (r"'tis", "it is"), (r"'twas", "it was"), (r"'em", "them"), (r"o'? ?clock", "oclock"),
    (r"gonna", "going to"), (r"wanna", "want to"), (r"gotta", "got to"), (r"gimme", "give me"),
    (r"lemme", "let me"), (r"kinda", "kind of"), (r"sorta", "sort of"), (r"outta", "out of"),
    (r"dunno", "do not know"),
]
# "'s" and "'d" are ambiguous: a following participle decides "has"/"had" over "is"/"would".
_AUXILIARY_HAVE = [
    (r"(\w)'s (been|got|gotten|had|done|gone)\b", r"\1 has \2"),
    (r"(\w)'d (been|better|best|gone|had|done|got|rather)\b", lambda m: m.group(1) + (
        " would " if m.group(2) == "rather" else " had ") + m.group(2)),
]
_SUFFIXES = [(r"n't\b", " not"), (r"'re\b", " are"), (r"'ll\b", " will"), (r"'ve\b", " have"),
             (r"'m\b", " am"), (r"'d\b", " would")]
# "'s" means "is" after these words; elsewhere it is a possessive (or a plural like "1980's") and stays "s".
_IS_AFTER = ("it", "he", "she", "that", "there", "here", "what", "where", "who", "how", "when", "why", "this",
             "everyone", "everybody", "everything", "someone", "somebody", "something", "nobody", "nothing")
_IS_CONTRACTION = re.compile(r"\b(" + "|".join(_IS_AFTER) + r")'s\b")

# Titles and common abbreviations, to the spoken word. The short ones that are also everyday words ("col",
# "gen", "rep", ...) are only read as abbreviations when written with their dot.
_TITLES = {"mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "prof": "professor", "jr": "junior",
           "sr": "senior", "st": "saint", "capt": "captain", "lt": "lieutenant", "sgt": "sergeant",
           "vs": "versus", "etc": "etcetera"}
_DOTTED_TITLES = {"gen": "general", "col": "colonel", "sen": "senator", "rep": "representative",
                  "rev": "reverend", "hon": "honorable", "pres": "president", "gov": "governor",
                  "supt": "superintendent", "cpl": "corporal", "messrs": "messieurs"}
_TITLE_RE = re.compile(r"\b(" + "|".join(_TITLES) + r")\b\.?")
_DOTTED_TITLE_RE = re.compile(r"\b(" + "|".join(_DOTTED_TITLES) + r")\.")


def _expand_contractions(s: str) -> str:
    for pattern, repl in _CONTRACTIONS:
        s = re.sub(r"(?<![\w'])" + pattern + r"(?![\w'])", repl, s)
    for pattern, repl in _AUXILIARY_HAVE:
        s = re.sub(pattern, repl, s)
    s = _IS_CONTRACTION.sub(r"\1 is", s)
    for pattern, repl in _SUFFIXES:
        s = re.sub(pattern, repl, s)
    return s


def _expand_titles(s: str) -> str:
    s = _DOTTED_TITLE_RE.sub(lambda m: _DOTTED_TITLES[m.group(1)] + " ", s)
    s = _TITLE_RE.sub(lambda m: _TITLES[m.group(1)] + " ", s)
    return re.sub(r"\bet cetera\b", "etcetera", s)


# ---------------------------------------------------------------- spelling

def _build_spellings() -> Dict[str, str]:
    table: Dict[str, str] = {}
    # -our -> -or, with the endings these stems take (and a negating prefix).
    our_stems = ["ardour", "armour", "behaviour", "candour", "clamour", "colour", "demeanour", "endeavour",
                 "favour", "fervour", "flavour", "harbour", "honour", "humour", "labour", "neighbour", "odour",
                 "parlour", "rancour", "rigour", "rumour", "saviour", "savour", "splendour", "succour", "tumour",
                 "valour", "vapour", "vigour", "enamour"]
    our_endings = ["", "s", "ed", "ing", "er", "ers", "ful", "fully", "less", "able", "ably", "ite", "ites",
                   "hood", "hoods", "ly", "ist", "ists", "y", "ies", "ism", "al", "ally"]
    for stem in our_stems:
        for prefix in ("", "un", "dis", "mis"):
            for ending in our_endings:
                table[prefix + stem + ending] = prefix + stem[:-3] + "or" + ending
    # -ise / -yse -> -ize / -yze for verbs (an explicit list: "advise", "surprise", "exercise" keep their s).
    ise_stems = ["agon", "antagon", "apolog", "author", "bapt", "capital", "categor", "central", "character",
                 "civil", "colon", "critic", "dramat", "econom", "emphas", "energ", "equal", "familiar",
                 "fantas", "fertil", "final", "fossil", "galvan", "global", "harmon", "hospital", "hypnot",
                 "ideal", "immun", "individual", "industrial", "internal", "jeopard", "legal", "legitim", "liberal",
                 "local", "magnet", "marginal", "material", "maxim", "mechan", "memor", "mesmer", "metabol",
                 "militar", "minim", "mobil", "modern", "monopol", "moral", "natural", "neutral", "normal",
                 "optim", "organ", "oxid", "pasteur", "patron", "penal", "personal", "philosoph", "plagiar",
                 "polar", "popular", "priorit", "public", "pulver", "radical", "random", "rational", "real",
                 "recogn", "revital", "sanit", "scandal", "scrutin", "sensit", "serial", "signal", "social",
                 "special", "stabil", "standard", "steril", "subsid", "summar", "symbol", "sympath", "synchron",
                 "synthes", "terror", "theor", "tranquil", "tyrann", "urban", "util", "vandal", "vapor",
                 "verbal", "victim", "visual", "vital", "vocal", "western"]
    for stem in ise_stems:
        for prefix in ("", "un", "re", "de"):
            for ending in ("e", "ed", "es", "ing", "ation", "ations", "er", "ers", "able"):
                table[prefix + stem + "is" + ending] = prefix + stem + "iz" + ending
    for stem in ("analy", "paraly", "cataly", "dialy"):
        for ending in ("se", "sed", "sing", "ser", "sers"):  # not "analyses": also the plural of "analysis"
            table[stem + ending] = stem + "z" + ending[1:]
    # -re -> -er
    for word in ("centre", "theatre", "metre", "kilometre", "centimetre", "millimetre", "litre", "millilitre",
                 "fibre", "spectre", "sabre", "sceptre", "mitre", "lustre", "calibre", "sombre", "meagre",
                 "manoeuvre"):
        american = word[:-2] + "er"
        table[word] = american
        table[word + "s"] = american + "s"
        table[word[:-1] + "d"] = american + "ed"
    table.update({"manoeuvre": "maneuver", "manoeuvres": "maneuvers", "manoeuvred": "maneuvered",
                  "manoeuvring": "maneuvering", "centring": "centering", "centred": "centered"})
    # doubled l
    for word in ("travel", "cancel", "label", "model", "level", "marvel", "signal", "fuel", "quarrel", "counsel",
                 "dial", "total", "equal", "channel", "tunnel", "libel", "rival", "swivel", "shovel", "parcel",
                 "panel", "pencil", "jewel", "snorkel", "grovel", "revel", "duel", "barrel", "bevel", "chisel"):
        for ending in ("ed", "ing", "er", "ers"):
            table[word + "l" + ending] = word + ending
    table.update({"counsellor": "counselor", "counsellors": "counselors", "marvellous": "marvelous",
                  "marvellously": "marvelously", "jewellery": "jewelry", "woollen": "woolen", "woollens": "woolens",
                  "enrol": "enroll", "enrols": "enrolls", "enrolment": "enrollment", "fulfil": "fulfill",
                  "fulfils": "fulfills", "fulfilment": "fulfillment", "instil": "instill", "instils": "instills",
                  "distil": "distill", "distils": "distills", "skilful": "skillful", "skilfully": "skillfully",
                  "wilful": "willful", "wilfully": "willfully"})
    # single words
    table.update({
        "grey": "gray", "greys": "grays", "greyed": "grayed", "greying": "graying", "greyish": "grayish",
        "greyer": "grayer", "greyest": "grayest", "greyness": "grayness",
        "defence": "defense", "defences": "defenses", "offence": "offense", "offences": "offenses",
        "pretence": "pretense", "licence": "license", "licences": "licenses", "practise": "practice",
        "practised": "practiced", "practises": "practices", "practising": "practicing", "cheque": "check",
        "cheques": "checks", "tyre": "tire", "tyres": "tires", "plough": "plow", "ploughs": "plows",
        "ploughed": "plowed", "ploughing": "plowing", "ploughman": "plowman", "mould": "mold", "moulds": "molds",
        "moulded": "molded", "mouldy": "moldy", "moult": "molt", "smoulder": "smolder", "smouldering": "smoldering",
        "smouldered": "smoldered", "moustache": "mustache", "moustaches": "mustaches", "pyjamas": "pajamas",
        "aluminium": "aluminum", "programme": "program", "programmes": "programs", "catalogue": "catalog",
        "catalogues": "catalogs", "catalogued": "cataloged", "dialogue": "dialog", "dialogues": "dialogs",
        "analogue": "analog", "ageing": "aging", "judgement": "judgment", "judgements": "judgments",
        "acknowledgement": "acknowledgment", "acknowledgements": "acknowledgments", "sceptic": "skeptic",
        "sceptics": "skeptics", "sceptical": "skeptical", "scepticism": "skepticism", "mediaeval": "medieval",
        "encyclopaedia": "encyclopedia", "anaemia": "anemia", "anaemic": "anemic", "anaesthetic": "anesthetic",
        "anaesthesia": "anesthesia", "paediatric": "pediatric", "foetus": "fetus", "oesophagus": "esophagus",
        "kerb": "curb", "kerbs": "curbs", "gaol": "jail", "gaols": "jails", "gaoler": "jailer",
        "speciality": "specialty", "specialities": "specialties", "cosy": "cozy", "cosier": "cozier",
        "draught": "draft", "draughts": "drafts", "storey": "story", "storeys": "stories",
        # standard in both varieties, but a British reference and an American hypothesis should agree
        "learnt": "learned", "spelt": "spelled", "dreamt": "dreamed", "burnt": "burned",
        "ok": "okay", "alright": "all right",
    })
    return table


SPELLINGS: Dict[str, str] = _build_spellings()

HESITATIONS = frozenset({"uh", "um", "umm", "uhm", "erm", "hmm", "hm", "mm", "mmm", "mhm"})

# ---------------------------------------------------------------- numbers

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                     "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if w != "_"}
_SCALES = {"thousand": 10 ** 3, "million": 10 ** 6, "billion": 10 ** 9, "trillion": 10 ** 12}
_ORDINAL_UNITS = {"zeroth": 0, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
                  "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
                  "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17,
                  "eighteenth": 18, "nineteenth": 19}
_ORDINAL_TENS = {w[:-1] + "ieth": v for w, v in _TENS.items()}
_ORDINAL_SCALES = {"hundredth": 100, **{w + "th": v for w, v in _SCALES.items()}}
_PLURAL_TENS = {w[:-1] + "ies": v for w, v in _TENS.items()}
_CURRENCY_WORDS = {"dollar": "$", "dollars": "$", "pound": "\u00a3", "pounds": "\u00a3", "euro": "\u20ac",
                   "euros": "\u20ac"}
_SUBUNIT_WORDS = {"cent", "cents", "penny", "pence", "\u00a2"}
_CURRENCY_SIGNS = {"$", "\u00a3", "\u20ac"}
_DIGITS_TOKEN = re.compile(r"\d+")
_DECIMAL_TOKEN = re.compile(r"\d*\.\d+")
_ORDINAL_TOKEN = re.compile(r"\d+(st|nd|rd|th)")
_PLURAL_DIGITS_TOKEN = re.compile(r"\d+s")
_AMOUNT = re.compile(r"\d+(\.\d+)?|\.\d+")
_DIGIT_WORDS = {**{w: str(v) for w, v in _UNITS.items() if v < 10}, "oh": "0", "o": "0"}


def _ordinal_suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


class _Number:
    """One spoken number, read word by word.

    A number is a sequence of pieces written one after another ("nineteen" "eighty four" -> "1984"); a piece is
    arithmetic, built from groups below a thousand and descending scale words ("two thousand and seven").
    `feed` says whether the next word continues the number; the caller ends the number at the first word refused.
    """

    def __init__(self):
        self.pieces: List[str] = []   # finished pieces, as digit strings
        self.total = 0                # scale groups already closed in the open piece ("two thousand")
        self.group = 0                # the open group below a thousand
        self.state = "empty"          # how the open group ends: empty, unit, teen, tens, hundred, hundred_tens,
        #                               scale, or whole (a written number: takes only "hundred" or a scale)
        self.group_has_hundred = False
        self.last_scale: Optional[int] = None  # scales must descend within a piece
        self.piece_has_scale = False  # a piece with "hundred" or a scale is not followed by a digit string
        self.joinable = True          # False when the number began as written digits
        self.suffix = ""              # ordinal "st"/"nd"/"rd"/"th" or plural "s": ends the number
        self.decimals = ""            # "." then the digits after "point"
        self.finished = False

    @property
    def started(self) -> bool:
        return self.state != "empty" or bool(self.pieces)

    def start_with_digits(self, value: int):
        self.group, self.state, self.joinable = value, "whole", False

    def _close_piece(self):
        if self.state != "empty":
            self.pieces.append(str(self.total + self.group))
        self.total, self.group, self.state = 0, 0, "empty"
        self.group_has_hundred, self.last_scale, self.piece_has_scale = False, None, False

    def _can_start_piece(self) -> bool:
        """Whether a new piece may follow the open one (a digit string such as a year, a time or a code).
        Strings stop at four digits, so that "nineteen eighty four ten" stays two numbers."""
        digits = sum(len(p) for p in self.pieces) + len(str(self.total + self.group))
        return self.joinable and self.state != "empty" and not self.piece_has_scale and digits < 4

    def _fits(self, value: int, kind: str) -> bool:
        """Whether a unit (0-9), teen (10-19) or tens (20-90) word fills the open group's next slot."""
        if self.state == "empty":
            return True  # the first word, or the word after a digit-string zero
        if self.state in ("tens", "hundred_tens"):
            return kind == "unit" and value > 0
        if self.state in ("hundred", "scale"):
            return value > 0
        return False

    @property
    def _after_zero(self) -> bool:
        return bool(self.pieces) and self.pieces[-1] == "0" and self.state == "empty"

    def _add_small(self, value: int, kind: str) -> bool:
        if not self._fits(value, kind):
            if not self._can_start_piece():
                return False
            self._close_piece()
        if self.state == "hundred":
            self.state = "hundred_tens" if kind == "tens" else "unit"
        elif self.state == "hundred_tens":
            self.state = "unit"
        else:
            self.state = kind
        self.group += value
        return True

    def feed(self, words: Sequence[str], j: int) -> bool:
        if self.finished:
            return False
        word = words[j]
        next_word = words[j + 1] if j + 1 < len(words) else None
        if self.decimals:
            if word in _DIGIT_WORDS:
                self.decimals += _DIGIT_WORDS[word]
                return True
            return False
        if word in _UNITS:
            return self._add_small(_UNITS[word], "unit" if _UNITS[word] < 10 else "teen")
        if word in _TENS:
            return self._add_small(_TENS[word], "tens")
        if word == "hundred":
            if not self.started:
                self.group = 100
            elif self.state in ("unit", "teen", "tens", "whole") and not self.group_has_hundred \
                    and 0 < self.group < 100:
                self.group *= 100
            else:
                return False
            self.state, self.group_has_hundred, self.piece_has_scale = "hundred", True, True
            return True
        if word in _SCALES:
            scale = _SCALES[word]
            if self.last_scale is not None and scale >= self.last_scale:
                return False
            if not self.started:
                self.group = 1
            elif self.state in ("empty", "scale") or self.group == 0:
                return False
            self.total += self.group * scale
            self.group, self.state, self.group_has_hundred = 0, "scale", False
            self.last_scale, self.piece_has_scale = scale, True
            return True
        if word in ("oh", "o"):
            # A zero inside a digit string ("nineteen oh five", "four oh seven"), never a lone "oh".
            if (self._can_start_piece() or self._after_zero) and next_word in _DIGIT_WORDS:
                self._close_piece()
                self.pieces.append("0")
                return True
            return False
        if word == "and":
            # "one hundred and five", "two thousand and seven"; not "five hundred and six hundred".
            after = words[j + 2] if j + 2 < len(words) else None
            return (self.state in ("hundred", "scale") and next_word is not None
                    and (_UNITS.get(next_word, 0) > 0 or next_word in _TENS or next_word in _ORDINAL_UNITS
                         or next_word in _ORDINAL_TENS)
                    and after != "hundred" and after not in _SCALES)
        if word in _ORDINAL_UNITS or word in _ORDINAL_TENS:
            value = _ORDINAL_UNITS[word] if word in _ORDINAL_UNITS else _ORDINAL_TENS[word]
            kind = "tens" if word in _ORDINAL_TENS else ("unit" if value < 10 else "teen")
            if self.started and not self._fits(value, kind):
                return False  # "one second": two numbers, not "12nd"
            self._add_small(value, kind)
            self.suffix = _ordinal_suffix(self.group)
            self.finished = True
            return True
        if word in _ORDINAL_SCALES:
            if not self.feed([word[:-2]], 0):
                return False
            self.suffix, self.finished = "th", True
            return True
        if word in _PLURAL_TENS:
            if not self._add_small(_PLURAL_TENS[word], "tens"):
                return False
            self.suffix, self.finished = "s", True
            return True
        if word == "point" and self.state != "empty" and next_word in _DIGIT_WORDS:
            self.decimals = "."
            return True
        return False

    def text(self) -> str:
        self._close_piece()
        return "".join(self.pieces) + (self.decimals if len(self.decimals) > 1 else "") + self.suffix


def _read_number(words: Sequence[str], i: int) -> Tuple[Optional[str], int]:
    """Reads a spoken or written number starting at words[i]: (its digits, the index after it), or (None, i)."""
    w = words[i]
    if _DECIMAL_TOKEN.fullmatch(w) or _ORDINAL_TOKEN.fullmatch(w) or _PLURAL_DIGITS_TOKEN.fullmatch(w) or (
            _DIGITS_TOKEN.fullmatch(w) and ((len(w) > 1 and w[0] == "0") or int(w) >= 1000)):
        return w, i + 1  # written in digits and complete: "007", "2024", "3.5", "21st", "1980s"
    number = _Number()
    j = i
    if _DIGITS_TOKEN.fullmatch(w):
        number.start_with_digits(int(w))  # may take "hundred" or a scale: "25 hundred", "3 million"
        j += 1
    elif w == "a":
        if i + 1 >= len(words) or not (words[i + 1] == "hundred" or words[i + 1] in _SCALES):
            return None, i
        number.start_with_digits(1)  # "a hundred", "a thousand"
        number.joinable = True
        j += 1
    while j < len(words) and number.feed(words, j):
        j += 1
    if j == i:
        return None, i
    return number.text(), j


def _starts_number(w: str) -> bool:
    # A bare "million" stays a word ("half million"); "a million" and "one million" are numbers.
    return (w in _UNITS or w in _TENS or w == "hundred" or w in _ORDINAL_UNITS
            or w in _ORDINAL_TENS or w in _ORDINAL_SCALES or w in _PLURAL_TENS or w == "a" or w[:1].isdigit())


def _normalize_numbers(words: List[str]) -> List[str]:
    """Numbers to digits, with what they are counting when it has a sign: "%", "$", "£", "€", "¢"."""
    out: List[str] = []
    i, n = 0, len(words)
    while i < n:
        sign = ""
        if words[i] in _CURRENCY_SIGNS and i + 1 < n and words[i + 1][:1].isdigit():
            sign, i = words[i], i + 1
        text, j = _read_number(words, i) if _starts_number(words[i]) else (None, i)
        if text is None:
            out.append(words[i])
            i += 1
            continue
        if j < n and words[j] in _SCALES and _DECIMAL_TOKEN.fullmatch(text):
            scaled = Decimal(text) * _SCALES[words[j]]  # "2.5 million", "two point five million"
            if scaled == scaled.to_integral_value():
                text, j = str(int(scaled)), j + 1
        if j < n and words[j] in ("percent", "%"):
            text, j = text + "%", j + 1
        elif j < n and words[j] in _CURRENCY_WORDS and _AMOUNT.fullmatch(text):
            sign = sign or _CURRENCY_WORDS[words[j]]
            j += 1
            # "five dollars (and) fifty cents" -> "$5.50"
            k = j + 1 if j < n and words[j] == "and" else j
            if k < n and "." not in text and _starts_number(words[k]) and words[k] != "a":
                cents, after = _read_number(words, k)
                if cents is not None and cents.isdigit() and int(cents) < 100 and after < n \
                        and words[after] in _SUBUNIT_WORDS:
                    text, j = f"{text}.{int(cents):02d}", after + 1
        elif j < n and words[j] in _SUBUNIT_WORDS and text.isdigit() and not sign:
            text, j = text + "\u00a2", j + 1
        out.append(sign + text)
        i = j
    return out


# ---------------------------------------------------------------- the normaliser

_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_INITIALISM_DOT = re.compile(r"(?<=\b[a-z])\.(?=[a-z]\b)|(?<=[a-z])\.(?=[a-z]\.)")
_UNIT_AFTER_DIGITS = re.compile(r"(?<=\d)(?=[a-z])(?!(?:st|nd|rd|th|s)\b)")
_TOKEN = re.compile(r"\d+\.\d+|\.\d+|[a-z0-9]+|[$\u00a3\u20ac\u00a2%]")
_SYMBOLS = frozenset("$\u00a3\u20ac\u00a2%")


def normalize(text: str) -> str:
    """The standard English form used for scoring (see the module docstring)."""
    s = unicodedata.normalize("NFKC", text).translate(_TRANSLATE).lower()
    s = _BRACKETED.sub(" ", s)
    s = _strip_diacritics(s)
    s = _expand_contractions(s)
    s = _expand_titles(s)
    s = s.replace("&", " and ").replace("per cent", "percent")
    s = _TIME.sub(r"\1\2", s)                 # "7:30" -> "730", as "seven thirty" reads
    s = _THOUSANDS_COMMA.sub("", s)            # "1,000" -> "1000"
    s = _INITIALISM_DOT.sub("", s)             # "u.s.a." -> "usa.", "p.m." -> "pm."
    s = re.sub(r"\.(?!\d)", " ", s)            # other dots end sentences or abbreviations
    s = _UNIT_AFTER_DIGITS.sub(" ", s)         # "5kg" -> "5 kg", "7pm" -> "7 pm"; not "21st", "1980s"
    s = s.replace("'", "")                     # possessives, "1980's", quotation marks
    words = _normalize_numbers(_TOKEN.findall(s))  # everything but letters, digits, dots in numbers and signs
    out: List[str] = []
    for w in words:
        if w in HESITATIONS or w in _SYMBOLS:
            continue
        out.extend(SPELLINGS.get(w, w).split())
    return " ".join(out)


# ---------------------------------------------------------------- word error rate

@dataclass
class EditCounts:
    """Substitutions, deletions, insertions and reference words; add them up over a corpus."""
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_words: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word (a fraction; NaN when there are no reference words)."""
        return self.errors / self.reference_words if self.reference_words else float("nan")

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.reference_words + other.reference_words)

    def as_dict(self) -> Dict[str, int]:
        return {"substitutions": self.substitutions, "deletions": self.deletions, "insertions": self.insertions,
                "reference_words": self.reference_words}


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> EditCounts:
    """Word-level Levenshtein alignment; among alignments with the fewest edits, the counts of one found by
    preferring substitutions, then deletions, then insertions when tracing back (the usual convention)."""
    n, m = len(reference), len(hypothesis)
    # cost[i][j]: edits turning reference[:i] into hypothesis[:j]
    cost = [list(range(m + 1))] + [[i] + [0] * m for i in range(1, n + 1)]
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        r = reference[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (r != hypothesis[j - 1]), prev[j] + 1, row[j - 1] + 1)
    counts = EditCounts(reference_words=n)
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            counts.substitutions += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            counts.deletions += 1
            i -= 1
        else:
            counts.insertions += 1
            j -= 1
    return counts


def score(reference: str, hypothesis: str) -> EditCounts:
    """Edit counts of one utterance, after normalising both texts."""
    return edit_counts(normalize(reference).split(), normalize(hypothesis).split())


def corpus_wer(pairs: Iterable[Tuple[str, str]]) -> EditCounts:
    """Summed edit counts over (reference, hypothesis) pairs: the corpus WER is `.wer` of the result."""
    total = EditCounts()
    for reference, hypothesis in pairs:
        total = total + score(reference, hypothesis)
    return total
