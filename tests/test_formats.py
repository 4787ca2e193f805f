from llmtut import formats as ins

WITH_INPUT = {"instruction": "Correct the spelling of the word.", "input": "baer", "output": "bear"}
NO_INPUT = {"instruction": "What is 7 + 5?", "input": "", "output": "12"}


# --- prompt styles -----------------------------------------------------------------------------


def test_alpaca_with_and_without_input():
    preamble = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    assert ins.format_alpaca(WITH_INPUT) == (
        f"{preamble}\n\n### Instruction:\nCorrect the spelling of the word.\n\n### Input:\nbaer"
    )
    assert ins.format_alpaca(WITH_INPUT, with_response=True) == ins.format_alpaca(WITH_INPUT) + "\n\n### Response:\nbear"
    assert ins.format_alpaca(NO_INPUT, with_response=True) == (
        f"{preamble}\n\n### Instruction:\nWhat is 7 + 5?\n\n### Response:\n12"
    )
    assert "### Input:" not in ins.format_alpaca(NO_INPUT)


def test_phi3_with_and_without_input():
    assert ins.format_phi3(WITH_INPUT) == "<|user|>\nCorrect the spelling of the word.\nbaer<|end|>"
    assert ins.format_phi3(WITH_INPUT, with_response=True) == (
        "<|user|>\nCorrect the spelling of the word.\nbaer<|end|>\n<|assistant|>\nbear"
    )
    assert ins.format_phi3(NO_INPUT, with_response=True) == "<|user|>\nWhat is 7 + 5?<|end|>\n<|assistant|>\n12"


def test_styles_end_prompt_where_the_response_header_starts():
    for name, fmt in ins.PROMPT_STYLES.items():
        for rec in (WITH_INPUT, NO_INPUT):
            assert fmt(rec, with_response=True) == fmt(rec) + ins.RESPONSE_HEADERS[name] + rec["output"]


def test_messages_with_and_without_input():
    assert ins.to_messages(WITH_INPUT) == [
        {"role": "user", "content": "Correct the spelling of the word.\nbaer"},
        {"role": "assistant", "content": "bear"},
    ]
    assert ins.to_messages(NO_INPUT)[0] == {"role": "user", "content": "What is 7 + 5?"}


def test_parse_answer_reads_the_rationales_last_sentence():
    assert ins.parse_answer(" A lever is a stiff bar. So the answer is lever.") == "lever"
    assert ins.parse_answer("So the answer is inclined plane. Extra") == "inclined plane"
    assert ins.parse_answer("A lever is a stiff bar.") is None
