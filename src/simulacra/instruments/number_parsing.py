"""Number parsing: the number a short free-form answer states.

Small models rarely answer with a bare number. They write "About 2,700 miles.",
"2.7 million", "$1,200", "between 10 and 20", "3k", "In 1990 it was 300 feet" or
"I'm not sure". :func:`parse_number` reads such replies by these rules:

1. **Numbers.** Digits with optional thousands commas ("2,700"; a comma not
   followed by exactly three digits ends the number), a decimal part ("2.7", ".5"),
   an exponent ("1.5e6"), and a scale: a word ("hundred", "thousand", "million",
   "billion", "trillion", with or without a space: "2.7 million") or an abbreviation
   attached to the digits ("3k", "3K", "10M", "5mn", "2bn", "4B"). A lower-case
   "m" or "b" is read as million or billion only after a currency sign ("$5m"):
   otherwise "300m" is 300 (metres). Currency signs, units and "%" are ignored;
   "about", "~" and "over" change nothing. A minus sign ("-5", "−5", "minus 5")
   makes a number negative when it is not a range dash (see 2).
2. **Ranges** give their midpoint: "10-20", "10 – 20", "10 to 20", "5 or 6",
   "from 10 to 20", "between 10 and 20" (``and`` only after "between"), and
   "-5 to -10". A scale on the second end only applies to both ("2-3 million" is
   2.5 million). A dash right after a number is a range dash, never a sign.
3. **Which number.** The answer is the first number (or range) that is not
   context: a year introduced as one (a four-digit integer from 1000 to 2100 after
   "in", "since", "by", "until", "till", "before", "after", "during", "year",
   "circa"; or followed by "s", "AD", "BC", "CE", "BCE"), an ordinal ("3rd",
   "21st"), a day of a date ("June 6", "6th of June"), part of a name
   ("COVID-19", "F-16"), or a list marker at the very start ("1. ", "2) ") when
   another number follows. So "In 1990 it was 300 feet" gives 300, "ended on June
   6, 1945" gives 1945 and "1. 42 miles" gives 42. When every number is context,
   the first one is the answer ("In 1990." gives 1990).
4. **Words**, read only when the reply holds no digits at all: "twenty",
   "twenty-five", "two hundred and fifty", "a dozen", "a million", "three
   thousand" (and ranges of them: "between ten and twenty"). A lone "one" after
   "a", "an", "no", "any", "some", "every", "each", "the", "that", "this" or
   "which", before "of", or before a hyphen ("one-way") is not a number.
5. Anything else ("I don't know", "a few hundred", "several", "thousands of") is
   ``None``: the caller keeps the raw text and marks it unparsed.

Not handled, by design: fractions ("1/2" reads as 1), European decimal commas
and thousands points ("2,5" reads as 2, "305.000" as 305), digit groups separated
by spaces ("1 000" reads as 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["parse_number"]

_SCALE_WORDS = {
    "hundred": Decimal(100),
    "thousand": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
}
# Abbreviations attached to the digits; "m" and "b" only count after a currency sign.
_ABBREVIATIONS = {
    "k": Decimal(10) ** 3,
    "K": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "mln": Decimal(10) ** 6,
    "MM": Decimal(10) ** 6,
    "B": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "bln": Decimal(10) ** 9,
}
_CURRENCY_ABBREVIATIONS = {"m": Decimal(10) ** 6, "b": Decimal(10) ** 9}
_CURRENCY = "$£€¥₹"
_MINUS = "-−–"  # hyphen-minus, minus sign, en dash

_NUMBER = re.compile(
    r"""
    (?<![A-Za-z\d.,])                      # not glued to a word ("A4") or a number
    (?P<digits>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)
    (?P<exponent>[eE][+-]?\d+)?
    (?:
        (?P<abbreviation>mln|mn|MM|bln|bn|[kKMBmb])(?![A-Za-z])
      | \s?(?P<word>(?i:hundred|thousand|million|billion|trillion))(?i:s)?(?![A-Za-z])
    )?
    """,
    re.VERBOSE,
)
_RANGE_DASH = re.compile(r"\s*[-–—]\s*|\s+(?:to|or)\s+", re.IGNORECASE)
_RANGE_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_BETWEEN = re.compile(r"\bbetween\s+$", re.IGNORECASE)
_WORD_MINUS = re.compile(r"\b(?:minus|negative)\s+$", re.IGNORECASE)
_YEAR_BEFORE = re.compile(
    r"\b(?:in|since|by|until|till|before|after|during|year|circa)\s+$", re.IGNORECASE
)
_YEAR_AFTER = re.compile(r"s\b|\s*(?:AD|BC|BCE|CE)\b")
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DAY_BEFORE = re.compile(rf"\b{_MONTH}\s+$", re.IGNORECASE)
_DAY_AFTER = re.compile(rf"(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b", re.IGNORECASE)
_NAME_BEFORE = re.compile(r"[A-Za-z][-‐]$")  # part of a name: "COVID-19", "F-16"
_ORDINAL_AFTER = re.compile(r"(?:st|nd|rd|th)\b", re.IGNORECASE)
_LIST_MARKER_AFTER = re.compile(r"[.)]\s+\S")

_UNIT_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_UNITS = {word: value for value, word in enumerate(_UNIT_WORDS.split(" "))}
_TENS = {
    word: 10 * (value + 2)
    for value, word in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}
_NOT_ONE_AFTER = {"a", "an", "no", "any", "some", "every", "each", "the", "that", "this", "which"}
_WORD = re.compile(r"[A-Za-z]+")


@dataclass
class _Number:
    """A number found in the text: its span and value."""

    start: int  # including a sign and a currency sign
    end: int
    value: Decimal  # signed and scaled
    scale: Decimal | None = None  # its own scale (word or abbreviation), if any
    context: bool = False  # a year, an ordinal or a list marker


def parse_number(text: str) -> float | None:
    """The number a short answer states, or None; see the module for the rules.

    Args:
        text: the answer, e.g. ``"About 2,700 miles."``.

    Returns:
        The number (a range's midpoint), or None when the text states none.

    Examples:
        >>> parse_number("between 10 and 20")
        15.0
        >>> parse_number("2.7 million")
        2700000.0
        >>> parse_number("In 1990 it was 300 feet")
        300.0
        >>> parse_number("I don't know") is None
        True
    """
    if not isinstance(text, str):
        return None
    numbers = _digit_numbers(text)
    if not numbers:
        numbers = _word_numbers(text)
    if not numbers:
        return None
    answers = _merge_ranges(text, numbers)
    chosen = next((n for n in answers if not n.context), answers[0])
    return float(chosen.value)


def _digit_numbers(text: str) -> list[_Number]:
    numbers = []
    for match in _NUMBER.finditer(text):
        start, end = match.start(), match.end()
        try:
            value = Decimal(match["digits"].replace(",", "") + (match["exponent"] or ""))
        except InvalidOperation:  # pragma: no cover - the pattern only admits numbers
            continue
        currency = start > 0 and text[start - 1] in _CURRENCY
        if currency:
            start -= 1
        scale = None
        if match["word"]:
            scale = _SCALE_WORDS[match["word"].lower()]
        elif match["abbreviation"]:
            abbreviation = match["abbreviation"]
            scale = _ABBREVIATIONS.get(abbreviation)
            if scale is None and currency:
                scale = _CURRENCY_ABBREVIATIONS.get(abbreviation)
            if scale is None:
                end = match.end("exponent") if match["exponent"] else match.end("digits")
        if scale is not None:
            value *= scale
        # A sign: a minus right before the number, itself after a space, an opening
        # bracket or the start (so "10-20" stays a range), or the word minus.
        if (
            start > 0
            and text[start - 1] in _MINUS
            and (start == 1 or not text[start - 2].isalnum())
        ):
            before = text[: start - 1].rstrip()
            if not (numbers and before and len(before) == numbers[-1].end):
                start -= 1
                value = -value
        elif _WORD_MINUS.search(text[:start]):
            value = -value
        number = _Number(start, end, value, scale)
        number.context = _is_context(text, match, number)
        numbers.append(number)
    return numbers


def _is_context(text: str, match: re.Match[str], number: _Number) -> bool:
    digits = match["digits"]
    after = text[match.end("digits") :]
    if _ORDINAL_AFTER.match(after) or _NAME_BEFORE.search(text[: match.start()]):
        return True
    plain_integer = digits.isdigit() and not match["exponent"] and number.scale is None
    if (
        plain_integer
        and 1 <= int(digits) <= 31
        and (_DAY_BEFORE.search(text[: number.start]) or _DAY_AFTER.match(after))
    ):
        return True
    if (
        plain_integer
        and len(digits) == 4
        and 1000 <= int(digits) <= 2100
        and (_YEAR_BEFORE.search(text[: number.start]) or _YEAR_AFTER.match(after))
    ):
        return True
    return (
        plain_integer
        and not text[: number.start].strip()
        and _LIST_MARKER_AFTER.match(after) is not None
        and any(ch.isdigit() for ch in after[1:])
    )


def _merge_ranges(text: str, numbers: list[_Number]) -> list[_Number]:
    """Join "a-b", "a to b", "a or b" and "between a and b" into their midpoints."""
    merged: list[_Number] = []
    i = 0
    while i < len(numbers):
        first = numbers[i]
        if i + 1 < len(numbers):
            second = numbers[i + 1]
            between = text[first.end : second.start]
            if _RANGE_DASH.fullmatch(between) or (
                _RANGE_AND.fullmatch(between) and _BETWEEN.search(text[: first.start])
            ):
                low = first.value
                if second.scale is not None and first.scale is None:
                    low *= second.scale
                merged.append(
                    _Number(
                        first.start,
                        second.end,
                        (low + second.value) / 2,
                        second.scale,
                        context=first.context and second.context,
                    )
                )
                i += 2
                continue
        merged.append(first)
        i += 1
    return merged


def _word_numbers(text: str) -> list[_Number]:
    """Numbers written in words: runs such as "two hundred and fifty", "a dozen"."""
    words = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    numbers: list[_Number] = []
    i = 0
    while i < len(words):
        run = _word_run(words, i)
        if run is None:
            i += 1
            continue
        end_index, value = run
        start = words[i][0]
        if end_index == i + 1 and words[i][2] == "one" and _pronoun_one(text, words, i):
            i += 1
            continue
        signed = -value if _WORD_MINUS.search(text[:start]) else value
        numbers.append(_Number(start, words[end_index - 1][1], Decimal(signed)))
        i = end_index
    return numbers


def _pronoun_one(text: str, words: list[tuple[int, int, str]], i: int) -> bool:
    """Whether a lone "one" is a pronoun or part of a phrase ("no one", "one of")."""
    before = words[i - 1][2] if i > 0 else ""
    after = words[i + 1][2] if i + 1 < len(words) else ""
    return before in _NOT_ONE_AFTER or after == "of" or text[words[i][1] : words[i][1] + 1] == "-"


def _word_run(words: list[tuple[int, int, str]], i: int) -> tuple[int, int] | None:
    """The number-word run starting at ``words[i]``: (index after it, its value)."""
    total = current = 0
    last = "start"
    j = i
    while j < len(words):
        word = words[j][2]
        following = words[j + 1][2] if j + 1 < len(words) else ""
        if (
            last == "start"
            and word in ("a", "an")
            and (following in _SCALE_WORDS or following == "dozen")
        ):
            current, last = 1, "unit"
        elif word in _UNITS and last in ("start", "ten", "hundred", "big", "and"):
            if last == "ten" and (_UNITS[word] >= 10 or word == "zero"):
                break
            current += _UNITS[word]
            last = "unit"
        elif word in _TENS and last in ("start", "hundred", "big", "and"):
            current += _TENS[word]
            last = "ten"
        elif word == "hundred" and last in ("unit", "ten"):
            current *= 100
            last = "hundred"
        elif word == "dozen" and last in ("unit", "ten"):
            current *= 12
            last = "dozen"
        elif (
            word in _SCALE_WORDS
            and word != "hundred"
            and last in ("unit", "ten", "hundred", "dozen")
        ):
            total += current * int(_SCALE_WORDS[word])
            current = 0
            last = "big"
        elif (
            word == "and"
            and last in ("hundred", "big")
            and (following in _UNITS or following in _TENS)
        ):
            last = "and"
        else:
            break
        j += 1
    if last in ("start", "and") or j == i:
        return None
    return j, total + current
