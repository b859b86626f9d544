"""LongBench v1 official per-sample metrics: hand-derived values and the official quirks.

Expected values come from the metric definitions in shared/specs/benchmarks.md,
worked out by hand, or from independent restatements written here; the official
LongBench code is not a dependency.
"""

from __future__ import annotations

import _thread
import importlib.util
import math
import random
import string
import sys
import warnings
from collections import Counter

import pytest
from rouge import Rouge

from lr_eval.tasks import longbench as lb

EPS = 1e-12


def rouge_f(p: float, r: float) -> float:
    """rouge 1.0.1's smoothed F: 2 * (P*R) / (P + R + 1e-8)."""
    return 2.0 * ((p * r) / (p + r + 1e-8))


def f1(common: int, n_pred: int, n_gold: int) -> float:
    p, r = common / n_pred, common / n_gold
    return (2 * p * r) / (p + r)


# ------------------------------------------------------------------ interface, tables


def test_dataset_tables() -> None:
    assert len(lb.DATASET_METRIC) == 21
    assert set(lb.DATASET_METRIC.values()) == set(lb.METRICS)
    assert lb.DATASET_METRIC["multifieldqa_zh"] == "qa_f1_zh"
    assert lb.DATASET_METRIC["triviaqa"] == "qa_f1"
    assert lb.DATASET_METRIC["samsum"] == "rouge"
    assert {d for d, m in lb.DATASET_METRIC.items() if m == "rouge_zh"} == {"dureader", "vcsum"}
    assert {d for d, m in lb.DATASET_METRIC.items() if m == "code_sim"} == {"lcc", "repobench-p"}
    assert lb.FIRST_LINE_DATASETS == {"trec", "triviaqa", "samsum", "lsht"}
    assert lb.NO_CHAT_TEMPLATE_DATASETS == {"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"}
    assert set(lb.CATEGORIES) == {"single_doc_qa", "multi_doc_qa", "summarization", "few_shot", "synthetic", "code"}
    flat = [d for names in lb.CATEGORIES.values() for d in names]
    assert sorted(flat) == sorted(lb.DATASET_METRIC)  # a partition of the 21
    assert len(lb.LONGBENCH_E_DATASETS) == 13
    assert all(name.endswith("_e") and name[:-2] in lb.DATASET_METRIC for name in lb.LONGBENCH_E_DATASETS)
    assert not {"narrativeqa_e", "musique_e", "dureader_e", "lsht_e"} & set(lb.LONGBENCH_E_DATASETS)


def test_dataset_names() -> None:
    assert lb.canonical_dataset("qasper_e") == "qasper"
    assert lb.canonical_dataset("repobench-p_e") == "repobench-p"
    assert lb.score("hotpotqa_e", "Paris", ["Paris"]) == lb.score("hotpotqa", "Paris", ["Paris"]) == 1.0
    with pytest.raises(ValueError, match="nosuchset"):
        lb.score("nosuchset", "x", ["x"])
    with pytest.raises(ValueError, match="hotpotqa_ee"):
        lb.score("hotpotqa_ee", "x", ["x"])


@pytest.mark.parametrize(
    ("length", "bucket"),
    [(0, "0-4k"), (3999, "0-4k"), (4000, "4-8k"), (7999, "4-8k"), (8000, "8k+"), (120000, "8k+")],
)
def test_length_bucket(length: int, bucket: str) -> None:
    assert lb.length_bucket(length) == bucket


# -------------------------------------------------------------------------- qa_f1


def test_normalize_answer() -> None:
    assert lb.normalize_answer("The  Cat's   hat, an apple!") == "cats hat apple"
    # articles only as whole words; punctuation removal runs first ("a-b" -> "ab")
    assert lb.normalize_answer("Theatre another a-b A.") == "theatre another ab"
    assert lb.normalize_answer("") == ""


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ("The Cat sat on the mat.", "a cat on a mat", f1(3, 4, 3)),
        ("Paris", "paris!", 1.0),
        ("New York City", "York", f1(1, 3, 1)),
        ("the", "a", 0.0),  # both normalise to nothing: overlap 0 -> 0
        ("cat cat dog", "cat cat cat", f1(2, 3, 3)),  # multiset overlap
        ("", "cat", 0.0),
    ],
)
def test_qa_f1(pred: str, gold: str, expected: float) -> None:
    assert lb.qa_f1_score(pred, gold) == pytest.approx(expected, abs=EPS)


def test_qa_f1_generated_against_restatement() -> None:
    rng = random.Random(7)
    vocab = ["a", "the", "An", "cat", "Cat,", "dog.", "1990", "é", "don't", "x"]

    def restated(pred: str, gold: str) -> float:
        def toks(s: str) -> list[str]:
            s = "".join(ch for ch in s.lower() if ch not in string.punctuation)
            return [t for t in s.split() if t not in ("a", "an", "the")]

        p, g = toks(pred), toks(gold)
        common = sum(min(p.count(t), g.count(t)) for t in set(p))
        return 0.0 if common == 0 else f1(common, len(p), len(g))

    for _ in range(300):
        pred = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 12)))
        gold = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 5)))
        assert lb.qa_f1_score(pred, gold) == pytest.approx(restated(pred, gold), abs=EPS), (pred, gold)


# ---------------------------------------------------------------------- qa_f1_zh


def test_normalize_zh_answer() -> None:
    assert lb.normalize_zh_answer("北京，上海！ A B.") == "北京上海ab"
    assert lb.normalize_zh_answer("“你好”…—《》") == "你好《"  # '《' is not in the official set, '》' is
    assert len(lb.CJK_PUNCTUATION) == 75 and lb.CJK_PUNCTUATION.endswith("﹏.")


def test_qa_f1_zh_jieba_tokens() -> None:
    # jieba: 我/爱/北京/天安门/。 -> '。' vanishes; gold: 北京/天安门
    assert lb.qa_f1_zh_score("我爱北京天安门。", "北京天安门") == pytest.approx(f1(2, 4, 2), abs=EPS)
    # 答案/是/：/北京/！ -> 答案, 是, 北京
    assert lb.qa_f1_zh_score("答案是：北京！", "北京") == pytest.approx(f1(1, 3, 1), abs=EPS)
    # punctuation-only answer has no tokens -> 0
    assert lb.qa_f1_zh_score("北京", "。！") == 0.0
    # a character-level match is not enough: jieba keeps 北京 as one token
    assert lb.qa_f1_zh_score("北", "北京") == 0.0
    assert lb.score("multifieldqa_zh", "我爱北京天安门。", ["上海", "北京天安门"]) == pytest.approx(
        f1(2, 4, 2), abs=EPS
    )


# -------------------------------------------------------------------------- rouge


def test_rouge_identical_and_empty() -> None:
    assert lb.rouge_score("the cat sat", "the cat sat") == rouge_f(1.0, 1.0)
    assert lb.rouge_score("the cat sat", "the cat sat") == pytest.approx(0.999999995, abs=1e-15)
    for empty in ("", ".", "...", ". ."):
        assert lb.rouge_score(empty, "the cat sat") == 0.0
        assert lb.rouge_score("the cat sat", empty) == 0.0
    assert lb.rouge_score("dog", "cat") == 0.0


def test_rouge_union_lcs_and_token_sets() -> None:
    # The classic union-LCS example: LCS_u = {w1, w2, w3, w5}; 5 reference words, 8 distinct candidate words.
    pred, gold = "w1 w2 w6 w7 w8. w1 w3 w8 w9 w5", "w1 w2 w3 w4 w5"
    assert lb.rouge_score(pred, gold) == pytest.approx(rouge_f(4 / 8, 4 / 5), abs=EPS)
    # Counts are over token *sets*: repeats collapse on both sides.
    assert lb.rouge_score("a a a", "a a a") == rouge_f(1.0, 1.0)
    assert lb.rouge_score("a b a", "a") == pytest.approx(rouge_f(1 / 2, 1.0), abs=EPS)
    # Tokenisation is on ' ' only; case and punctuation other than '.' are kept.
    assert lb.rouge_score("Cat, sat", "cat sat") == pytest.approx(rouge_f(1 / 2, 1 / 2), abs=EPS)
    # '.' splits sentences anywhere, even inside a number: {3, 5, kg} vs {35, kg}, LCS_u = {kg}
    assert lb.rouge_score("3.5 kg", "35 kg") == pytest.approx(rouge_f(1 / 3, 1 / 2), abs=EPS)


def test_rouge_generated_against_package() -> None:
    """Short inputs never reach the recursion limit: ours must equal the package call exactly."""
    rng = random.Random(11)
    vocab = ["a", "b", "c", "d", ".", "e", "  ", "f."]
    rouge = Rouge()
    for _ in range(150):
        pred = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30)))
        gold = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30)))
        try:
            expected = rouge.get_scores([pred], [gold], avg=True)["rouge-l"]["f"]
        except Exception:  # noqa: BLE001 - the official wrapper maps any exception to 0
            expected = 0.0
        assert lb.rouge_score(pred, gold) == expected, (pred, gold)


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_rouge_recursion_quirk() -> None:
    # Back-tracking 'w0' against a k-word reference walks up k rows: k + 1 nested calls.
    # The official chain has 9 frames below them (10 for rouge_zh) under the default limit 1000.
    assert lb.rouge_score("w0", _words(990)) == pytest.approx(rouge_f(1.0, 1 / 990), abs=EPS)
    assert lb.rouge_score("w0", _words(991)) == 0.0
    assert lb.rouge_zh_score("w0", _words(989)) == pytest.approx(rouge_f(1.0, 1 / 989), abs=EPS)
    assert lb.rouge_zh_score("w0", _words(990)) == 0.0
    # A long '.'-free summary whose words are matched early (w0 first) fails; split into sentences it scores.
    long_pred = _words(1200)
    assert lb.rouge_score(long_pred, "w0 w5 zz") == 0.0
    chunks = [" ".join(f"w{i}" for i in range(start, start + 10)) for start in range(0, 1200, 10)]
    split_pred = ". ".join(chunks)
    assert lb.rouge_score(split_pred, "w0 w5 zz") == pytest.approx(rouge_f(2 / 1200, 2 / 3), abs=EPS)
    # ...while a long prediction ending with the reference back-tracks only a few steps
    assert lb.rouge_score(long_pred + " zz", "w1199 zz") == pytest.approx(rouge_f(2 / 1201, 1.0), abs=EPS)
    assert lb.score("gov_report", long_pred, ["w0 w5 zz"]) == 0.0


def test_rouge_quirk_independent_of_caller_depth() -> None:
    def deep(k: int) -> float:
        return lb.rouge_score("w0", _words(990)) if k == 0 else deep(k - 1)

    assert deep(sys.getrecursionlimit() - 150) == pytest.approx(rouge_f(1.0, 1 / 990), abs=EPS)


@pytest.mark.skipif(sys.getrecursionlimit() != 1000, reason="needs the default recursion limit")
def test_official_frame_model_against_package() -> None:
    """Rebuild the official stack depth on a fresh thread and watch the package overflow exactly at k = 991.

    A fresh thread's function sits at depth 1 like eval.py's <module>; two more frames stand in
    for scorer() and metrics.rouge_score(), which then calls the package as the official code does.
    """

    def official_like(pred: str, gold: str) -> str:
        out: list[str] = []
        done = _thread.allocate_lock()
        done.acquire()

        def rouge_score_frame() -> None:
            try:
                Rouge().get_scores([pred], [gold], avg=True)
                out.append("ok")
            except RecursionError:
                out.append("recursion")

        def scorer_frame() -> None:
            rouge_score_frame()

        def module_frame() -> None:
            try:
                scorer_frame()
            finally:
                done.release()

        _thread.start_new_thread(module_frame, ())
        done.acquire()
        return out[0]

    assert official_like("w0", _words(990)) == "ok"
    assert official_like("w0", _words(991)) == "recursion"


def test_recon_call_model_matches_package() -> None:
    """Our iterative count of rouge's nested back-tracking calls equals the real nesting depth."""
    from rouge import rouge_score as package

    rng = random.Random(3)
    for _ in range(60):
        x = [rng.choice("abc") for _ in range(rng.randint(1, 25))]
        y = [rng.choice("abcd") for _ in range(rng.randint(1, 25))]
        depth = deepest = 0

        def profiler(frame, event, arg):  # type: ignore[no-untyped-def]
            nonlocal depth, deepest
            if frame.f_code.co_name == "_recon":
                if event == "call":
                    depth += 1
                    deepest = max(deepest, depth)
                elif event == "return":
                    depth -= 1

        sys.setprofile(profiler)
        try:
            package._recon_lcs(x, y)
        finally:
            sys.setprofile(None)
        assert lb._recon_calls(x, y) == deepest, (x, y)


def test_rouge_zh() -> None:
    # 我/爱/北京/天安门/。 (the '。' is a token of its own) vs 北京/天安门
    assert lb.rouge_zh_score("我爱北京天安门。", "北京天安门") == pytest.approx(rouge_f(2 / 5, 1.0), abs=EPS)
    assert lb.rouge_zh_score("", "北京") == 0.0
    assert lb.score("vcsum", "北京天安门", ["北京天安门"]) == rouge_f(1.0, 1.0)


# ----------------------------------------------------------------- classification


def test_classification_basic() -> None:
    classes = ["Location", "Human", "Entity"]
    assert lb.classification_score("Location", "Location", classes) == 1.0
    assert lb.classification_score("Human or Location", "Location", classes) == 0.5
    assert lb.classification_score("Entity", "Location", classes) == 0.0
    with pytest.raises(ValueError):
        lb.classification_score("Location", "Location", None)


def test_classification_remove_while_iterating() -> None:
    # 'cat' and 'ego' are both substrings of the gold 'category'. A correct filter keeps
    # only ['category'] (score 1.0); the official loop removes 'cat', skips 'ego', and
    # ends with ['ego', 'category'] -> 0.5.
    assert lb.classification_score("category", "category", ["cat", "ego", "category"]) == 0.5
    # Order matters: ['ego', 'category', 'cat'] -> 'ego' removed, 'category' skipped, 'cat' removed -> 1.0
    assert lb.classification_score("category", "category", ["ego", "category", "cat"]) == 1.0
    # Duplicates: list.remove drops the first equal entry, and iteration stops early.
    assert lb.classification_score("category dog", "category", ["cat", "dog", "cat", "category"]) == 0.5


def test_classification_generated_against_index_restatement() -> None:
    def restated(pred: str, gold: str, classes: list[str]) -> float:
        found = [c for c in classes if c in pred]
        index = 0  # a list iterator is an index that does not notice removals
        while index < len(found):
            name = found[index]
            if name in gold and name != gold:
                del found[found.index(name)]
            index += 1
        return 1.0 / len(found) if gold in found else 0.0

    rng = random.Random(5)
    pool = ["cat", "category", "ego", "dog", "hotdog", "hot", "do", "人", "人物", "名人"]
    for _ in range(300):
        classes = rng.sample(pool, rng.randint(2, len(pool)))
        if rng.random() < 0.3:
            classes.append(rng.choice(classes))
        pred = " ".join(rng.choice(pool) for _ in range(rng.randint(0, 5)))
        gold = rng.choice(classes)
        assert lb.classification_score(pred, gold, classes) == restated(pred, gold, classes)


# ------------------------------------------------------------ retrieval and count


def test_retrieval_and_count() -> None:
    assert lb.retrieval_score("Paragraph 3", "Paragraph 3") == 1.0
    assert lb.retrieval_score("Paragraph 3 or Paragraph 13", "Paragraph 3") == 0.5
    assert lb.retrieval_score("I do not know", "Paragraph 3") == 0.0  # no numbers
    assert lb.retrieval_score("", "Paragraph 3") == 0.0
    assert lb.retrieval_score("Paragraph 03", "Paragraph 3") == 0.0  # string comparison
    assert lb.retrieval_score("Paragraph ٣", "Paragraph 3") == 0.0  # Unicode digit: counted, never equal
    assert lb.retrieval_score("Paragraph 3, not ３", "Paragraph 3") == 0.5
    assert lb.retrieval_zh_score("答案是段落12，不是段落2", "段落12") == 0.5
    assert lb.retrieval_zh_score("不知道", "段落12") == 0.0
    with pytest.raises(ValueError):
        lb.retrieval_score("Paragraph 1", "no id here")
    assert lb.count_score("There are 12 unique paragraphs", "12") == 1.0
    assert lb.count_score("12, 13 or 14", "12") == pytest.approx(1 / 3, abs=EPS)
    assert lb.count_score("005", "5") == 0.0
    assert lb.count_score("none", "5") == 0.0


def test_retrieval_generated() -> None:
    rng = random.Random(9)
    for _ in range(200):
        target = rng.randint(0, 20)
        numbers = [rng.randint(0, 20) for _ in range(rng.randint(0, 6))]
        pred = " and ".join(f"Paragraph {n}" for n in numbers)
        expected = 0.0 if not numbers else numbers.count(target) / len(numbers)
        assert lb.retrieval_score(pred, f"Paragraph {target}") == pytest.approx(expected, abs=EPS)
        assert lb.count_score(pred.replace("Paragraph ", ""), str(target)) == pytest.approx(expected, abs=EPS)


# ----------------------------------------------------------------------- code_sim


def test_code_sim_first_code_line() -> None:
    pred = "\n\n```python\n# set x\n// js comment\nx = 1\ny = 2"
    assert lb.code_sim_score(pred, "x = 1") == 1.0
    # no usable line -> '' -> ratio 0 (or 100 when the gold is also empty)
    assert lb.code_sim_score("```\n# c", "x = 1") == 0.0
    assert lb.code_sim_score("```\n# c", "") == 1.0
    assert lb.code_sim_score("", "x") == 0.0
    # '#' anywhere in a line disqualifies it
    assert lb.code_sim_score("x = 1  # note\nx = 1", "x = 1") == 1.0


def test_code_sim_whole_percent_half_even() -> None:
    # difflib ratio 2*M/T: 2*1/16 = 0.125 -> 12.5 -> 12 ; 2*3/16 = 0.375 -> 37.5 -> 38
    assert lb.code_sim_score("abbbbbbb", "accccccc") == 0.12
    assert lb.code_sim_score("abcxxxxx", "abcyyyyy") == 0.38
    # 2*4/6 = 0.666.. -> 67
    assert lb.code_sim_score("abcd", "ab") == 0.67


def test_fuzz_ratio_matches_fuzzywuzzy_difflib() -> None:
    if importlib.util.find_spec("Levenshtein") is not None:
        pytest.skip("python-Levenshtein installed: fuzzywuzzy would not use difflib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Using slow pure-python SequenceMatcher": the backend we want
        from fuzzywuzzy import fuzz
    rng = random.Random(13)
    alphabet = "ab(x)= #\t"
    for _ in range(300):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert lb._fuzz_ratio(a, b) == fuzz.ratio(a, b), (a, b)


# --------------------------------------------------------- per-sample score() rules


@pytest.mark.parametrize("dataset", ["triviaqa", "triviaqa_e"])
def test_first_line_triviaqa(dataset: str) -> None:
    assert lb.score(dataset, "\n\nParis\nLondon is wrong", ["Paris"]) == 1.0
    assert lb.score(dataset, "Answer:\nParis", ["Paris"]) == 0.0  # only the first line counts
    # the same text on a QA dataset without the cut
    assert lb.score("hotpotqa", "Answer:\nParis", ["Paris"]) == pytest.approx(f1(1, 2, 1), abs=EPS)


def test_first_line_trec_lsht_samsum() -> None:
    classes = ["Location", "Human", "Entity"]
    assert lb.score("trec", "\nLocation\nHuman", ["Location"], classes) == 1.0
    assert lb.score("trec", "Type: Human\nLocation", ["Location"], classes) == 0.0
    assert lb.score("lsht", "体育\n财经", ["体育"], ["体育", "财经"]) == 1.0
    assert lb.score("samsum", "\nthe cat sat\nsomething else", ["the cat sat"]) == rouge_f(1.0, 1.0)
    # gov_report is not cut: the second line's words count
    assert lb.score("gov_report", "the cat sat\nx", ["the cat sat"]) == pytest.approx(rouge_f(3 / 4, 1.0), abs=EPS)


def test_max_over_answers_and_floor() -> None:
    assert lb.score("narrativeqa", "a red car", ["blue car", "red car", "bus"]) == 1.0
    assert lb.score("narrativeqa", "red bus", ["blue car", "red car", "bus"]) == pytest.approx(f1(1, 2, 1), abs=EPS)
    assert lb.score("narrativeqa", "anything", []) == 0.0
    assert lb.score("passage_count", "no idea", ["3"]) == 0.0
    assert lb.score("lcc", "x = 1\n", ["y = 2", "x = 1"]) == 1.0
    assert lb.score("passage_retrieval_en", "Paragraph 4", ["Paragraph 4"]) == 1.0
    assert isinstance(lb.score("musique", "x", ["y"]), float)


# -------------------------------------------------------------- dataset aggregation


def test_dataset_score_and_e() -> None:
    preds = ["Paris", "red bus", "nothing", "London"]
    answers = [["Paris"], ["red car"], ["x"], ["London", "Paris"]]
    per_sample = [1.0, 0.5, 0.0, 1.0]
    assert lb.dataset_score("hotpotqa", preds, answers, None) == pytest.approx(100 * sum(per_sample) / 4, abs=1e-9)
    buckets = lb.dataset_score_e("hotpotqa_e", preds, answers, [100, 5000, 9000, 3999], None)
    assert buckets == {"0-4k": 100.0, "4-8k": 50.0, "8k+": 0.0}
    empty = lb.dataset_score_e("hotpotqa", preds[:1], answers[:1], [100], None)
    assert empty["0-4k"] == 100.0 and math.isnan(empty["4-8k"]) and math.isnan(empty["8k+"])
    with pytest.raises(ValueError):
        lb.dataset_score("hotpotqa", [], [], None)
    with pytest.raises(ValueError):
        lb.dataset_score("hotpotqa", ["a"], [], None)


# -------------------------------------------------------------- extra QA metrics


def test_sub_em() -> None:
    assert lb.sub_em("The answer is New York City.", ["new york"], "en") == 1.0
    assert lb.sub_em("The answer is York.", ["New York", "Boston"], "en") == 0.0
    assert lb.sub_em("He said: paris!", ["London", "Paris"], "en") == 1.0
    assert lb.sub_em("答案是北京天安门。", ["北京 天安门"], "zh") == 1.0  # zh normalisation drops spaces
    assert lb.sub_em("答案是上海", ["北京"], "zh") == 0.0
    assert lb.sub_em("x", [], "en") == 0.0
    with pytest.raises(ValueError):
        lb.sub_em("x", ["x"], "fr")


def test_token_f1() -> None:
    # no first-line cut, unlike score('triviaqa', ...)
    assert lb.token_f1("Answer:\nParis", ["Paris", "Lyon"], "en") == pytest.approx(f1(1, 2, 1), abs=EPS)
    assert lb.token_f1("我爱北京天安门。", ["北京天安门"], "zh") == pytest.approx(f1(2, 4, 2), abs=EPS)
    assert lb.token_f1("x", [], "en") == 0.0


def test_metric_signatures_accept_all_classes_keyword() -> None:
    for name, fn in lb.METRICS.items():
        gold = {"retrieval": "Paragraph 1", "retrieval_zh": "段落1", "count": "1", "classification": "a"}.get(name, "a")
        value = fn("a 1", gold, all_classes=["a"])
        assert 0.0 <= value <= 1.0, name
    assert Counter(lb.DATASET_METRIC.values())["qa_f1"] == 7
