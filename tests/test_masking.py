import pytest

from llmtut.masking import IGNORE_INDEX, mask_all_but_responses

BOS, EOS = 1, 2


def test_keeps_the_answer_and_its_eos_only():
    ids = [EOS, 10, 11, 12, BOS, 20, 21, EOS]
    assert mask_all_but_responses(ids, BOS, EOS) == [IGNORE_INDEX] * 5 + [20, 21, EOS]


def test_every_response_of_a_multi_turn_example_is_kept():
    ids = [EOS, 10, BOS, 20, EOS, 11, BOS, 21, 22, EOS, 12]
    m = IGNORE_INDEX
    assert mask_all_but_responses(ids, BOS, EOS) == [m, m, m, 20, EOS, m, m, 21, 22, EOS, m]


def test_a_response_without_eos_runs_to_the_end():
    assert mask_all_but_responses([10, BOS, 20, 21], BOS, EOS) == [IGNORE_INDEX, IGNORE_INDEX, 20, 21]


@pytest.mark.parametrize("ids", [[EOS, 10, 11, 12], [EOS, 10, BOS]])
def test_a_row_with_nothing_to_learn_is_an_error_naming_the_row(ids):
    with pytest.raises(ValueError, match=r"row 3 has no response.*marker"):
        mask_all_but_responses(ids, BOS, EOS, row=3)
