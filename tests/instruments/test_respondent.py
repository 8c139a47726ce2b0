"""Respondents and how a question is put to them (pure)."""

from __future__ import annotations

import pytest

from simulacra.instruments import INTERVIEWER, Respondent
from simulacra.instruments.respondent import question_prompt
from simulacra.llm.chat import ChatML, Message


def test_question_is_the_interviewers_last_message_before_the_reply():
    history = [Message("Assistant", "I like boats."), Message("Bob", "Me too.")]
    respondent = Respondent("p1", "You are a sailor.", history)  # a list becomes a tuple
    assert respondent.history == tuple(history)
    prompt = question_prompt(ChatML(), respondent, "Do you swim?")
    assert prompt[0] == "<|im_start|>system\nYou are a sailor.<|im_end|>\n"
    assert prompt[1:4] == ["<|im_start|>assistant\n", "I like boats.", "<|im_end|>\n"]
    assert prompt[-4] == f"<|im_start|>user\n{INTERVIEWER}: "
    assert prompt[-3] == "Do you swim?"
    assert prompt[-1] == "<|im_start|>assistant\n"


def test_bad_respondents_are_clear_errors():
    with pytest.raises(ValueError, match="non-empty string"):
        Respondent("", "x")
    with pytest.raises(ValueError, match="the speaker who asks"):
        Respondent("p1", "x", name=INTERVIEWER)
