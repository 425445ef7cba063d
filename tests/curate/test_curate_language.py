from __future__ import annotations

from importlib import resources

from idportrait.curate.language import detect_language


def _labelled() -> list[tuple[str, str]]:
    text = (resources.files("idportrait") / "data" / "curate" / "lang_eval.tsv").read_text(encoding="utf-8")
    return [tuple(line.split("\t", 1)) for line in text.splitlines() if line and not line.startswith("#")]


def test_english_vs_other_accuracy_on_the_labelled_sample():
    rows = _labelled()
    assert len(rows) >= 200
    assert sum(label == "en" for label, _ in rows) >= 100
    correct = sum((detect_language(caption) == "en") == (label == "en") for label, caption in rows)
    assert correct / len(rows) >= 0.97


def test_never_calls_a_foreign_caption_english():
    foreign = [(label, c) for label, c in _labelled() if label != "en"]
    assert all(detect_language(c) != "en" for _, c in foreign)


def test_odd_input_is_unknown_not_a_crash():
    assert detect_language("") == "un"
    assert detect_language("\x00\x01\x02") == "un"
    assert detect_language("Portrait of a man\x00 smiling at the camera in the park") == "en"
