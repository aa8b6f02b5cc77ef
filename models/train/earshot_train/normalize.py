"""Written-to-spoken normalisation of English training text.

Training targets say numbers the way a speaker says them ("twenty five", "nineteen eighty four", "three thirty
p.m."), because the model hears speech and has to write what it hears; the synthetic voices read the same text, so
the audio and the target agree. Casing and punctuation are kept. Numbers come out without hyphens or "and"
("one hundred twenty five"), one consistent spelling for the decoder to learn.
"""
import re

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_MAX_CARDINAL = 10 ** 15 - 1


def cardinal(n: int) -> str:
    """Spoken English for an integer, e.g. 1234 -> "one thousand two hundred thirty four"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n > _MAX_CARDINAL:
        return digits(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + cardinal(rest))
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return cardinal(high) + " " + name + ("" if rest == 0 else " " + cardinal(rest))
    raise AssertionError("unreachable")


def ordinal(n: int) -> str:
    """Spoken ordinal: 1 -> "first", 22 -> "twenty second", 100 -> "one hundredth"."""
    words = cardinal(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def digits(s: str) -> str:
    """Digit by digit, as phone numbers and codes are read: "0427" -> "zero four two seven"."""
    return " ".join(_ONES[int(c)] for c in s if c.isdigit())


def year(n: int) -> str:
    """A year as it is said: 1984 -> "nineteen eighty four", 1905 -> "nineteen oh five", 2007 -> "two thousand
    seven", 2024 -> "twenty twenty four", 1900 -> "nineteen hundred"."""
    if n < 1000 or n > 2099:
        return cardinal(n)
    if 2000 <= n <= 2009:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    if low < 10:
        return cardinal(high) + " oh " + _ONES[low]
    return cardinal(high) + " " + cardinal(low)


def _plural_of_number_words(words: str) -> str:
    """"nineteen eighty" -> "nineteen eighties" (for decades written 1980s)."""
    if words.endswith("y"):
        return words[:-1] + "ies"
    return words + "s"


def decimal(text: str) -> str:
    """"3.14" -> "three point one four"; "0.5" -> "zero point five"; commas in the integer part are allowed."""
    whole, _, frac = text.partition(".")
    whole = whole.replace(",", "")
    head = cardinal(int(whole)) if whole else "zero"
    return head + (" point " + digits(frac) if frac else "")


def _number_words(text: str) -> str:
    """An unsigned written number (maybe with thousands commas or a decimal point) in words."""
    if "." in text:
        return decimal(text)
    return cardinal(int(text.replace(",", "")))


_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents")}
_SCALE_WORDS = r"(?:thousand|million|billion|trillion)"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"


def _money(match: re.Match) -> str:
    symbol, amount, scale = match.group("cur"), match.group("amt"), match.group("scale")
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    if scale:
        return f"{_number_words(amount)} {scale} {many}"
    whole, _, cents = amount.replace(",", "").partition(".")
    whole_n = int(whole) if whole else 0
    parts = []
    if whole_n or not cents:
        parts.append(f"{cardinal(whole_n)} {one if whole_n == 1 else many}")
    if cents:
        cents_n = int((cents + "0")[:2])
        if cents_n:
            parts.append(f"{cardinal(cents_n)} {sub_one if cents_n == 1 else sub_many}")
    return " and ".join(parts) if parts else f"zero {many}"


def _time(match: re.Match) -> str:
    hour, minute, suffix = int(match.group("h")), int(match.group("m")), match.group("ampm")
    if hour > 24 or minute > 59:
        return match.group(0)
    if minute == 0:
        spoken = cardinal(hour) + ("" if suffix else " o'clock")
    elif minute < 10:
        spoken = f"{cardinal(hour)} oh {_ONES[minute]}"
    else:
        spoken = f"{cardinal(hour)} {cardinal(minute)}"
    if suffix:
        spoken += " " + ("a.m." if suffix.lower().startswith("a") else "p.m.")
    return spoken


def _hour_ampm(match: re.Match) -> str:
    return cardinal(int(match.group("h"))) + " " + ("a.m." if match.group("ampm").lower().startswith("a") else "p.m.")


def _ordinal_match(match: re.Match) -> str:
    return ordinal(int(match.group("n").replace(",", "")))


def _percent(match: re.Match) -> str:
    return _number_words(match.group("n")) + " percent"


def _decade(match: re.Match) -> str:
    text = match.group("n")
    if len(text) == 4:
        n = int(text)
        if n % 100 == 0:
            return cardinal(n // 100) + " hundreds"
        return _plural_of_number_words(year(n))
    return _plural_of_number_words(cardinal(int(text)))


_YEAR_CONTEXT = re.compile(r"(?:\b(?:in|since|of|from|until|till|by|to|before|after|during|year|early|late|mid|"
                           r"January|February|March|April|May|June|July|August|September|October|November|December|"
                           r"spring|summer|autumn|fall|winter|circa|around)\s+|(?:\d|first|second|third|th),\s+)$",
                           re.IGNORECASE)


def _plain_number(match: re.Match, text: str) -> str:
    token = match.group(0)
    if re.fullmatch(r"\d{4}", token):
        n = int(token)
        before = text[max(0, match.start() - 24):match.start()]
        # Four-digit numbers from 1100 to 1999 are said as years either way ("fifteen hundred men" is fine);
        # 2000-2099 only in a year context, since "2048 bytes" is "two thousand forty eight".
        if 1100 <= n <= 1999 or (2000 <= n <= 2099 and _YEAR_CONTEXT.search(before)):
            return year(n)
    if re.fullmatch(r"0\d+", token):
        return digits(token)
    return _number_words(token)


_ABBREVIATIONS = [
    (re.compile(r"\be\.g\.(?=\s|$)", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.(?=\s|$)", re.IGNORECASE), "that is"),
    (re.compile(r"\betc\.(?=\s*$)"), "et cetera."),
    (re.compile(r"\betc\."), "et cetera"),
    (re.compile(r"\bvs\.?(?=\s)"), "versus"),
    (re.compile(r"\bNo\.\s*(?=\d)"), "number "),
    (re.compile(r"#\s*(?=\d)"), "number "),
    (re.compile(r"\s&\s"), " and "),
    (re.compile(r"\bapprox\.", re.IGNORECASE), "approximately"),
    (re.compile(r"\bDept\."), "Department"),
    (re.compile(r"\bkm\b"), "kilometers"),
    (re.compile(r"(?<=\d)\s?kg\b"), " kilograms"),
    (re.compile(r"(?<=\d)\s?lbs?\b\.?"), " pounds"),
    (re.compile(r"(?<=\d)\s?mph\b"), " miles per hour"),
    (re.compile(r"(?<=\d)\s?ft\b\.?"), " feet"),
    (re.compile(r"(?<=\d)\s?cm\b"), " centimeters"),
    (re.compile(r"(?<=\d)\s?mm\b"), " millimeters"),
    (re.compile(r"(?<=\d)\s?min\b\.?"), " minutes"),
    (re.compile(r"(?<=\d)\s?hrs?\b\.?"), " hours"),
]

_RE_MONEY = re.compile(r"(?P<cur>[$£€])\s?(?P<amt>" + _NUM + r")(?:\s(?P<scale>" + _SCALE_WORDS + r"))?")
_RE_TIME = re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s?(?P<ampm>[aApP]\.?[mM]\.?))?(?![\d:])")
_RE_HOUR_AMPM = re.compile(r"\b(?P<h>1[0-2]|0?[1-9])\s?(?P<ampm>[aApP]\.?[mM]\.?)(?=[\s,;!?]|\.?$)")
_RE_ORDINAL = re.compile(r"\b(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)\b")
_RE_PERCENT = re.compile(r"(?P<n>" + _NUM + r")\s?(?:%|per\s?cent\b)")
_RE_DECADE = re.compile(r"(?:\b|')(?P<n>\d{4}|\d0)'?s\b")
_RE_RANGE = re.compile(r"(?<=\d)\s?[-\u2013]\s?(?=\d)")
_RE_FRACTION = re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})\b")
_RE_NEGATIVE = re.compile(r"(?<![\w\d])-(?=\d)")
_RE_NUMBER = re.compile(_NUM)
_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           "Jan\\.|Feb\\.|Mar\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sep\\.|Sept\\.|Oct\\.|Nov\\.|Dec\\.")
_RE_MONTH_DAY = re.compile(r"\b(?P<month>" + _MONTHS + r")\s+(?P<day>[1-9]|[12]\d|3[01])\b(?![:.,]?\d)")
_MONTH_ABBREVIATIONS = {"Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April", "Jun.": "June",
                        "Jul.": "July", "Aug.": "August", "Sep.": "September", "Sept.": "September",
                        "Oct.": "October", "Nov.": "November", "Dec.": "December"}


def _month_day(match: re.Match) -> str:
    month = match.group("month")
    return f"{_MONTH_ABBREVIATIONS.get(month, month)} {ordinal(int(match.group('day')))}"

_FRACTION_NAMES = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _fraction(match: re.Match) -> str:
    a, b = int(match.group("a")), int(match.group("b"))
    if b == 0 or a == 0:
        return match.group(0)
    if b in _FRACTION_NAMES:
        name = _FRACTION_NAMES[b][0 if a == 1 else 1]
    else:
        name = ordinal(b) + ("" if a == 1 else "s")
    return ("a " if a == 1 and b != 2 else ("one " if a == 1 else cardinal(a) + " ")) + name


def normalize_numbers(text: str) -> str:
    """Rewrite numbers, money, times, dates, percentages and a few abbreviations as spoken words.

    Text that still contains digits afterwards has a form this normaliser does not know; callers drop it.
    """
    for pattern, replacement in _ABBREVIATIONS:
        text = pattern.sub(replacement, text)
    text = _RE_MONEY.sub(_money, text)
    text = _RE_PERCENT.sub(_percent, text)
    text = _RE_TIME.sub(_time, text)
    text = _RE_HOUR_AMPM.sub(_hour_ampm, text)
    text = _RE_ORDINAL.sub(_ordinal_match, text)
    text = _RE_MONTH_DAY.sub(_month_day, text)
    text = _RE_DECADE.sub(_decade, text)
    text = _RE_FRACTION.sub(_fraction, text)
    text = _RE_RANGE.sub(" to ", text)
    text = _RE_NEGATIVE.sub("minus ", text)
    text = _RE_NUMBER.sub(lambda m: _plain_number(m, text), text)
    return re.sub(r"\s{2,}", " ", text).strip()
