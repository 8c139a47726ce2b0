"""Respondents: the prompt owners an instrument's questions are put to.

A respondent is a persona (its system text) with the context it has seen, identified
by a key carried into every answer. A question reaches it as one more message, from
an interviewer, at the end of its history; the model answers as the respondent.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulacra.llm.chat import ChatFormat, Message, render_dialogue

__all__ = ["INTERVIEWER", "Respondent", "question_prompt"]

INTERVIEWER = "Interviewer"
"""The speaker who puts an instrument's question."""


@dataclass(frozen=True)
class Respondent:
    """A persona with its context, answering questions under a key.

    Attributes:
        key: the identifier carried into its answers (e.g. ``"p003"``, ``"cond-7"``).
        system: the persona prompt (system text); ``""`` asks the bare model.
        history: the messages seen before the question.
        name: the prompt owner: its own messages in ``history`` are its turns.

    """

    key: str
    system: str
    history: tuple[Message, ...] = ()
    name: str = "Assistant"

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"a respondent key must be a non-empty string, got {self.key!r}")
        if not isinstance(self.history, tuple):
            object.__setattr__(self, "history", tuple(self.history))
        if self.name == INTERVIEWER:
            raise ValueError(
                f"respondent {self.key!r} is named {INTERVIEWER!r}, the speaker who asks "
                "the questions; give it another name"
            )


def question_prompt(fmt: ChatFormat, respondent: Respondent, text: str) -> list[str]:
    """The prompt segments that put ``text`` to ``respondent``.

    Args:
        fmt: the engine's chat format.
        respondent: who is asked.
        text: the full question text (with its options, scale or unit).

    Returns:
        The persona, its history and the interviewer's question, ending with the
        header of the respondent's reply.
    """
    asked = [*respondent.history, Message(INTERVIEWER, text)]
    return render_dialogue(fmt, respondent.system, asked, respondent.name)
