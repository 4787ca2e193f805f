from llmtut.generation import (
    choice_log_likelihoods,
    generate_answers,
    iterative_generate_view,
    next_token_accuracy,
)


def test_greedy_answers_are_stripped_and_batched(causal_base):
    model, tokenizer = causal_base
    prompts = ['In Spanish, "good" is', 'The Spanish word for "dog" is', 'In Spanish, "tree" is']
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=1)
    assert answers == ["bueno", "perro", "árbol"]
    # batching with left padding gives what one prompt alone gives
    assert generate_answers(model, tokenizer, prompts[1:2], max_new_tokens=1) == ["perro"]


def test_next_token_accuracy_counts_the_given_positions(causal_base):
    model, tokenizer = causal_base
    ids = tokenizer('In Spanish, "good" is bueno.', add_special_tokens=False)["input_ids"]
    assert next_token_accuracy(model, [ids], [range(len(ids) - 2, len(ids) - 1)]) == 1.0  # 'bueno'
    wrong = ids[:-2] + [tokenizer.convert_tokens_to_ids("Ġperro")] + ids[-1:]
    assert next_token_accuracy(model, [wrong], [range(len(ids) - 2, len(ids) - 1)]) == 0.0


def test_iterative_view_has_a_row_per_position_and_marks_hits(causal_base):
    model, tokenizer = causal_base
    text = 'In Spanish, "good" is bueno.'
    view = iterative_generate_view({"base": model}, tokenizer, text)
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert len(view) == n - 1
    assert list(view.columns) == ["context ends with", "actual next", "base"]
    assert view.iloc[-2]["base"] == " bueno ✓"


def test_end_of_turn_stops_generation_and_stays_in_the_answer(causal_base):
    model, tokenizer = causal_base
    prompt = 'In Spanish, "good" is'
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    free = model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    first, second = free[0, enc["input_ids"].shape[1] :][:2].tolist()
    end = tokenizer.convert_ids_to_tokens(second)  # the token the model writes after "bueno"
    answer = generate_answers(model, tokenizer, [prompt], max_new_tokens=4, end_of_turn=end)[0]
    assert answer == tokenizer.decode([first, second]).strip()
    # an end-of-turn token the model never writes: the answer runs to max_new_tokens, specials kept
    long = generate_answers(model, tokenizer, [prompt], max_new_tokens=4, end_of_turn="<unk>")[0]
    assert long.startswith(answer) and len(tokenizer(long, add_special_tokens=False)["input_ids"]) >= 3


def test_batches_and_sampling_are_reproducible(causal_base):
    model, tokenizer = causal_base
    prompts = ['In Spanish, "good" is', 'The Spanish word for "dog" is', 'In Spanish, "tree" is']
    # batched greedy equals all-at-once greedy
    assert generate_answers(model, tokenizer, prompts, max_new_tokens=3, batch_size=2) == generate_answers(
        model, tokenizer, prompts, max_new_tokens=3)
    sampled = [generate_answers(model, tokenizer, prompts * 4, max_new_tokens=6, do_sample=True, seed=s)
               for s in (0, 0, 1)]
    assert sampled[0] == sampled[1]  # same seed, same samples
    assert sampled[0] != sampled[2]  # another seed, other samples


def test_choice_log_likelihoods_rank_the_known_answer_first_and_match_one_row_alone(causal_base):
    model, tokenizer = causal_base
    prompt, choices = 'In Spanish, "dog" is', [" bueno", " perro", " árbol"]
    scores = choice_log_likelihoods(model, tokenizer, prompt, choices)
    assert max(range(3), key=scores.__getitem__) == 1
    # padding the shorter rows changes nothing: each score equals that choice scored alone
    for choice, score in zip(choices, scores, strict=True):
        assert abs(choice_log_likelihoods(model, tokenizer, prompt, [choice])[0] - score) < 1e-4
