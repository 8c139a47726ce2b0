"""Chat formats: how a persona, a dialogue history and a reply become prompt segments.

The engine tokenizes every segment separately and concatenates the tokens, so a
history that grows by one message extends the previous prompt token for token and
the KV cache can be reused. A format therefore renders messages as lists of
segments: a header (the role marker), a body (the text itself, scored as a
continuation) and a footer.

Two formats are provided: :class:`ChatML` for instruction-tuned models such as
SmolLM2, and :class:`PlainTranscript` for base models such as Gemma-3-270M, which
continue a "Name: text" transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

__all__ = [
    "ChatFormat",
    "ChatML",
    "Message",
    "PlainTranscript",
    "Prompt",
    "chat_format",
]

Prompt: TypeAlias = str | Sequence[str]
"""A prompt: one string, or a list of segments tokenized separately and concatenated."""


@dataclass(frozen=True)
class Message:
    """One message of a dialogue.

    Attributes:
        speaker: who said it.
        text: what was said.

    """

    speaker: str
    text: str


class ChatFormat(Protocol):
    """Renders dialogues as token-stable prompt segments."""

    name: str
    stop: tuple[str, ...]

    def system(self, text: str) -> list[str]:
        """Segments that open a prompt with a system (persona) text."""
        ...

    def header(self, speaker: str, *, own: bool) -> str:
        """The segment before a message body; ``own`` marks the prompt owner's turns."""
        ...

    def body(self, text: str) -> str:
        """The segment holding a message's text, as it is scored."""
        ...

    def footer(self) -> str:
        """The segment closing a message."""
        ...


def render_dialogue(fmt: ChatFormat, system: str, history: list[Message], owner: str) -> list[str]:
    """Render a system text and a history from ``owner``'s point of view.

    Args:
        fmt: the chat format.
        system: the persona prompt.
        history: the messages so far.
        owner: the agent whose prompt this is; its messages are its own turns.

    Returns:
        The prompt segments, ending with the header of ``owner``'s next reply.

    """
    segments = fmt.system(system)
    for message in history:
        segments += [
            fmt.header(message.speaker, own=message.speaker == owner),
            fmt.body(message.text),
            fmt.footer(),
        ]
    segments.append(fmt.header(owner, own=True))
    return segments


@dataclass(frozen=True)
class ChatML:
    """The ChatML template (``<|im_start|>role ... <|im_end|>``) used by SmolLM2.

    The prompt owner speaks as the assistant; other speakers' messages are user
    messages prefixed with the speaker's name.
    """

    name: str = "chatml"
    stop: tuple[str, ...] = ("\n",)

    def system(self, text: str) -> list[str]:
        """Segments of the system message."""
        return [f"<|im_start|>system\n{text}<|im_end|>\n"]

    def header(self, speaker: str, *, own: bool) -> str:
        """The role marker; other speakers are named inside a user message."""
        if own:
            return "<|im_start|>assistant\n"
        return f"<|im_start|>user\n{speaker}: "

    def body(self, text: str) -> str:
        """The message text unchanged."""
        return text

    def footer(self) -> str:
        """The end-of-message marker."""
        return "<|im_end|>\n"


@dataclass(frozen=True)
class PlainTranscript:
    """A plain "Name: text" transcript for base models.

    The persona text comes first, then one line per message. A reply is the text
    after ``"Name:"``, with its leading space, up to the end of the line.
    """

    name: str = "plain"
    stop: tuple[str, ...] = ("\n",)

    def system(self, text: str) -> list[str]:
        """The persona text followed by a transcript heading."""
        return [f"{text}\n\nTranscript of the conversation:\n"]

    def header(self, speaker: str, *, own: bool) -> str:
        """The speaker's name and a colon."""
        return f"{speaker}:"

    def body(self, text: str) -> str:
        """The text with the single space that follows the colon."""
        return " " + text.strip()

    def footer(self) -> str:
        """The line break ending a message."""
        return "\n"


def chat_format(name: str) -> ChatFormat:
    """Return the chat format called ``name`` ("chatml" or "plain").

    Args:
        name: the format's name.

    Returns:
        The format object.

    Raises:
        ValueError: for an unknown name.

    """
    formats: dict[str, ChatFormat] = {"chatml": ChatML(), "plain": PlainTranscript()}
    try:
        return formats[name]
    except KeyError:
        raise ValueError(
            f"unknown chat format {name!r}: expected one of {sorted(formats)}"
        ) from None
