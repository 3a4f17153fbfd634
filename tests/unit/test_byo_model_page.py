"""docs/byo-model.md walks a new user's whole path, in order (tests/live/test_byo_model_doc.py runs it)."""

from __future__ import annotations

from tests.doc_blocks import doc_blocks
from tests.paths import REPO_ROOT


def test_the_page_has_the_steps_of_a_new_user_in_order() -> None:
    code = "\n".join(c for _, c in doc_blocks((REPO_ROOT / "docs" / "byo-model.md").read_text(encoding="utf-8")))
    steps = ['pip install "warpspeed-airflow-provider[embedded,models]"', "warpspeed init", "warpspeed setup",
             "warpspeed stack up", 'eval "$(warpspeed stack env)"', "warpspeed tables create",
             "skops_trusted_types", "warpspeed models publish", "warpspeed send", "airflow dags test warpspeed_scoring",
             "warpspeed scores", "predict_proba(rows[FEATURES])[:, 1]", "< 1e-9", "warpspeed stack down"]
    places = [code.find(s) for s in steps]
    assert all(p >= 0 for p in places), [s for s, p in zip(steps, places, strict=True) if p < 0]
    assert places == sorted(places)


def test_blocks_are_found_by_language_only() -> None:
    text = "x\n```bash\necho 1\n```\n```json\n{}\n```\n```python\nprint(2)\n```\n"
    assert doc_blocks(text) == [("bash", "echo 1\n"), ("python", "print(2)\n")]
