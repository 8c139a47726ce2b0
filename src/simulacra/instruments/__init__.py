"""Instruments: questions put to respondents and answered by the model, in tidy rows.

A *respondent* (:class:`Respondent`) is a prompt owner: a persona's system text and
the context it has seen, under a key carried into its answers. An *instrument* is a
question of one of four kinds:

- :class:`Choice`: a forced choice between option texts. P(option) is the softmax
  of the option text's summed log-probability as the reply, averaged over the
  orders the options are listed in (both orders for two options, every cyclic
  rotation for more); the per-order probabilities are kept to report position bias.
- :class:`Likert`: an N-point scale with labelled ends. P(point) is read at one
  position when every point label is one token, otherwise by summed
  log-probabilities; with it come the expected point and a seeded sampled point.
- :class:`Numeric`: an open estimate. A short reply is sampled with the item's own
  seed and read by :func:`parse_number` ("2,700", "2.7 million", "about 3000
  miles", "3k", "between 10 and 20"); a reply without a number is kept, unparsed.
- :class:`FreeText`: a reply in the respondent's own words, sampled.

:func:`ask` answers a list of (respondent, instrument) items with one batched
scoring call and one generation call per sampling setting, sharing cached prefixes;
an item's randomness is seeded from (seed, respondent key, instrument name) only.
:func:`redraw` draws a scored answer again under another seed without decoding.
:func:`answers_frame` and :func:`option_frame` lay the answers out as tidy tables.
"""

from simulacra.instruments.answers import Answer, answers_frame, option_frame
from simulacra.instruments.asking import Instrument, ask, item_rng, item_seed, redraw
from simulacra.instruments.choice import Choice
from simulacra.instruments.free_text import FreeText
from simulacra.instruments.likert import Likert
from simulacra.instruments.number_parsing import parse_number
from simulacra.instruments.numeric import Numeric
from simulacra.instruments.respondent import INTERVIEWER, Respondent

__all__ = [
    "INTERVIEWER",
    "Answer",
    "Choice",
    "FreeText",
    "Instrument",
    "Likert",
    "Numeric",
    "Respondent",
    "answers_frame",
    "ask",
    "item_rng",
    "item_seed",
    "option_frame",
    "parse_number",
    "redraw",
]
