"""ROUGE-N, ROUGE-L and ROUGE-Lsum F-measures from Google's rouge_score package, as an `evaluate`
metric that loads offline.

`evaluate.load("rouge")` fetches its script from the Hub, which no machine that builds this book can
reach. This is that script's logic, loaded from a local path, computing with the same package:
- rouge_score's RougeScorer scores a prediction against a reference. Its default tokens: lowercase,
  every run of characters other than [a-z0-9] is a separator; use_stemmer=True applies nltk's Porter
  stemmer (no download needed) to tokens longer than 3 characters;
- rougeN: clipped n-gram overlap; rougeL: longest common subsequence (LCS) of the token lists;
  rougeLsum: summary-level LCS (Lin 2004, section 3.2) over sentences separated by "\\n";
- several references per prediction: the best F-measure over them, per rouge type (score_multi).

One difference: with use_aggregator=True (the default) each score is the plain mean over the
examples. The Hub metric reports the median of 1000 unseeded bootstrap resamples of that mean
(rouge_score's BootstrapAggregator "mid"), drawn from numpy's global random state: it scatters around
the same value from run to run, and moves that state. Scores are Python floats.

    rouge = evaluate.load("<this folder or this file>")
    rouge.compute(predictions=["hello there"], references=["hello there"])
    # {'rouge1': 1.0, 'rouge2': 1.0, 'rougeL': 1.0, 'rougeLsum': 1.0}
"""

from types import SimpleNamespace

import datasets
import evaluate
from rouge_score import rouge_scorer

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    month = jul,
    year = "2004",
    address = "Barcelona, Spain",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W04-1013",
    pages = "74--81",
}
"""

_DESCRIPTION = """\
ROUGE (Recall-Oriented Understudy for Gisting Evaluation) compares a predicted summary or
translation with one or more references by their shared n-grams (rouge1, rouge2, ...) and their
longest common subsequence (rougeL, and rougeLsum over newline-separated sentences). It is case
insensitive. A wrapper around Google Research's reimplementation of ROUGE (the rouge_score package):
https://github.com/google-research/google-research/tree/master/rouge
"""

_KWARGS_DESCRIPTION = """
Computes ROUGE F-measures of predictions against references.
Args:
    predictions: list of predicted texts.
    references: one reference text per prediction, or a list of reference texts per prediction.
    rouge_types: the scores to compute, by default ["rouge1", "rouge2", "rougeL", "rougeLsum"].
        "rouge{n}" (n from 1 to 9): n-gram overlap; "rougeL": longest common subsequence;
        "rougeLsum": summary-level LCS over sentences separated by newlines.
    use_aggregator: True (default) returns the mean F-measure over the examples; False returns one
        F-measure per example.
    use_stemmer: True strips word suffixes with the Porter stemmer before matching (default tokens only).
    tokenizer: optional callable text -> list of tokens, replacing the default tokenisation.
Returns:
    rouge1, rouge2, rougeL, rougeLsum (the requested rouge_types): a float each, or a list of floats.
Examples:
    >>> rouge = evaluate.load("path/to/rouge")
    >>> rouge.compute(predictions=["hello there", "general kenobi"], references=["hello there", "general kenobi"])
    {'rouge1': 1.0, 'rouge2': 1.0, 'rougeL': 1.0, 'rougeLsum': 1.0}
"""

DEFAULT_ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Sequence(datasets.Value("string", id="sequence")),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Value("string", id="sequence"),
                    }
                ),
            ],
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=[
                "https://en.wikipedia.org/wiki/ROUGE_(metric)",
                "https://github.com/google-research/google-research/tree/master/rouge",
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        rouge_types=None,
        use_aggregator=True,
        use_stemmer=False,
        tokenizer=None,
    ):
        rouge_types = list(rouge_types or DEFAULT_ROUGE_TYPES)
        scorer = rouge_scorer.RougeScorer(
            rouge_types,
            use_stemmer=use_stemmer,
            # rouge_score wants an object with a tokenize method, as the Hub metric's wrapper makes
            tokenizer=SimpleNamespace(tokenize=tokenizer) if tokenizer else None,
        )
        per_example = {rouge_type: [] for rouge_type in rouge_types}
        for refs, pred in zip(references, predictions, strict=True):
            # score_multi: the best reference per rouge type (one reference is a list of one)
            scores = scorer.score_multi([refs] if isinstance(refs, str) else refs, pred)
            for rouge_type in rouge_types:
                per_example[rouge_type].append(float(scores[rouge_type].fmeasure))
        if not use_aggregator:
            return per_example
        return {rouge_type: sum(values) / len(values) for rouge_type, values in per_example.items()}
