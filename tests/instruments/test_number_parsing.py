"""The numeric parser on answers of the kinds small models write (pure)."""

from __future__ import annotations

import pytest

from simulacra.instruments import parse_number

# Replies SmolLM2-135M-Instruct sampled at temperature 1 to Numeric questions
# (distances, heights, populations, prices, ages, temperatures, counts, years),
# with the reading the parser's rules give. Failures (no number) are kept: None.
SAMPLED = [
    ("There are approximately 109 miles in a one-way flight from New", 109),
    ("Canada, 10.5 million.", 10_500_000),
    ("Well, let's say a cup of coffee costs $1.40.", 1.4),
    ("That's a 6-mile round trip, and with a quick calculation,", 6),
    ("Young adventurer, 45, by the way. Captain Tarshis", 45),
    ("The height of 322 meters!", 322),
    ("The price of a cup of coffee is around 24 dollars for a single", 24),
    ("Number: 323", 323),
    ("The world is approximately 894 million but this number does not include", 894e6),
    ("A corrected version: 2022. You can add the year without", 2022),
    ("New York City - 5,050, Los Angeles - 1", 5050),
    ("I'm 21 years old", 21),
    ("Alright, my duh. So it's about 288 Kelvin", 288),
    ("Oh, eh, zut. 'Cause it's 19", 19),
    ("I'm on a little over 32000 miles with 3", 32000),
    ("Taller: 88.072 meters", 88.072),
    ("Age: My age is 18. 18 is a nice and", 18),
    ("Canada is the largest country in North America and covers 9.993", 9.993),
    ("There are currently 192 Earths.", 192),
    ("The Second World War ended on June 6, 1945,", 1945),
    ("Megahabib, 2013 in The King's Honor", 2013),
    ("Amenities, I must say. I'm 30, my age", 30),
    ("The number of countries in the world is 8.", 8),
    ("1,240. That's 2,240 Miles.", 1240),
    ("The Eiffel Tower stands at approximately 326 meters tall.", 326),
    ("I'm a 45-year-old American from Ohio, and I", 45),
    ("Canada... the biggest country ever! It's over 33 million people!", 33e6),
    # European thousands point: read as a decimal point (documented limitation).
    ("There are currently approximately 305.000 people worldwide that speak", 305),
    # Failures: no number, a pronoun "one", an ordinal word, a vague quantity.
    ("The most iconic structure in Europe, it takes nearly a full day for a ticket", None),
    ("The year that stands as one of the most defining moments in human history", None),
    ("Sure, a one-shutter. Your question reflects the scale of distance that", None),
    ("I am one of the most precise Chemists in the city! I have already", None),
    ("Today, my lasting honor, I'm in my late thirties, and", None),
    ("I'm not sure I have all the heads of State right now. To add", None),
    ("Eighth time.", None),
    ("Since we don't have a specific numerical answer, just referencing the given", None),
    ("Here's the response:", None),
]

# The forms the issue names, and others small models write.
FORMS = [
    ("2,700", 2700),
    ("2.7 million", 2_700_000),
    ("about 3000 miles", 3000),
    ("3k", 3000),
    ("It's 5K", 5000),
    ("between 10 and 20", 15),
    ("10-20", 15),
    ("10 - 20 feet", 15),
    ("10 to 20", 15),
    ("5 or 6", 5.5),
    ("2-3 million", 2_500_000),
    ("$1,200", 1200),
    ("$5m", 5_000_000),
    ("300m", 300),
    ("1.5 billion", 1_500_000_000),
    ("2bn", 2e9),
    ("1,000,000", 1_000_000),
    ("1.5e6", 1.5e6),
    (".5", 0.5),
    ("50%", 50),
    ("~300", 300),
    ("300.", 300),
    ("-5", -5),
    ("It was -5 degrees", -5),
    ("−40 °C", -40),
    ("minus 3", -3),
    ("-5 to -10", -7.5),
    ("between -5 and -10", -7.5),
    ("In 1990 it was 300 feet", 300),
    ("In 1990.", 1990),
    ("the 1990s", 1990),
    ("1. 300 feet", 300),
    ("The 3rd tallest, at 500 m", 500),
    ("COVID-19 cases: 300", 300),
    ("approximately 2,500 miles (4,000 km).", 2500),
    ("The answer is 42.", 42),
    ("twenty", 20),
    ("twenty-five", 25),
    ("two hundred and fifty", 250),
    ("a dozen", 12),
    ("two dozen eggs", 24),
    ("a million", 1_000_000),
    ("three thousand", 3000),
    ("between ten and twenty", 15),
    ("One.", 1),
    ("I don't know", None),
    ("no one knows", None),
    ("a few hundred", None),
    ("thousands of miles", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), SAMPLED + FORMS)
def test_parse_number(text, expected):
    value = parse_number(text)
    if expected is None:
        assert value is None
    else:
        assert value == pytest.approx(expected, rel=1e-12)


def test_many_sampled_replies_including_failures():
    assert len(SAMPLED) >= 30
    assert sum(expected is None for _, expected in SAMPLED) >= 5


def test_non_text_is_none():
    assert parse_number(None) is None  # type: ignore[arg-type]
