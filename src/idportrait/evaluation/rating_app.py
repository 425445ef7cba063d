"""The rating page of `idportrait evaluate rate`: one generated image beside its reference photo and its
prompt, three 0-5 ratings, back, skip and progress. Method names and file names never reach the page
(images are re-encoded, so their metadata stays on the server).

One rater's flow:
    name (asked once, remembered by the browser)  ->  position = db.position(rater)   (0 for a new rater)
    screen(position): item = study.items[rater_order(rater, seed)[position]], with the rater's stored scores
    a rating click -> db.save(rater, image, criterion, score) at once; the click that completes an image
                      moves on to the next one
    back / skip    -> position -/+ 1, saved, so a returning rater continues where they stopped
Keyboard: 0-5 rate the first criterion still empty; Left / Backspace go back; Right / S skip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

from idportrait.evaluation.rating_db import CRITERIA, MAX_SCORE, RatingDB
from idportrait.evaluation.rating_items import RatingItem
from idportrait.evaluation.rating_sample import rater_order
from idportrait.imageio import load_image

MAX_NAME = 64
KEYBOARD_JS = """
<script>
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target.matches && target.matches("textarea:not([disabled]), input[type=text]:not([disabled])")) return;
  const panel = document.getElementById("panel");
  if (!panel || panel.offsetParent === null || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  let button = null;
  if (/^[0-5]$/.test(key)) {
    for (const id of ["rate-prompt", "rate-faceid", "rate-quality"]) {
      const box = document.getElementById(id);
      if (box && !box.querySelector("input:checked")) {
        button = box.querySelectorAll("input[type=radio]")[Number(key)];
        break;
      }
    }
  } else if (key === "ArrowLeft" || key === "Backspace") {
    button = document.getElementById("back");
  } else if (key === "ArrowRight" || key === "s" || key === "S") {
    button = document.getElementById("skip");
  }
  if (button) { event.preventDefault(); button.click(); }
});
</script>
"""
"""Pass as ``head=`` to ``launch`` (gradio takes page scripts there)."""


@dataclass
class Study:
    """The images of a study (in the database's order), its ratings file and its seed."""

    db: RatingDB
    items: list[RatingItem]
    seed: int

    def item(self, rater: str, position: int) -> RatingItem:
        return self.items[rater_order(len(self.items), rater, self.seed)[position]]


def progress_text(study: Study, rater: str, position: int) -> str:
    """The status line: ``"37 of 200 · 36 rated by ana"``, or the done line after the last image."""
    total, rated = len(study.items), study.db.completed(rater)
    if position >= total:
        return f"Done: {rated} of {total} rated by {rater}. Thank you! Go back to change a rating."
    return f"{position + 1} of {total} · {rated} rated by {rater}"


def build_rating_app(study: Study) -> Any:
    """The gradio Blocks page over ``study``; launch it with ``head=KEYBOARD_JS``."""
    import gradio as gr

    secret = hashlib.sha256(str(study.db.path.resolve()).encode()).hexdigest()
    choices = [(str(score), score) for score in range(MAX_SCORE + 1)]
    with gr.Blocks(title="idportrait rating") as page:
        state = gr.State(None)  # {"rater": name, "position": index into the rater's order}
        remembered = gr.BrowserState("", storage_key="idportrait-rater", secret=secret)
        gr.Markdown(
            "# Rate the portraits\nEach generated image is shown beside the reference photo of the person it "
            f"should show. Rate it from 0 (worst) to {MAX_SCORE} (best) on each criterion."
        )
        with gr.Column(elem_id="name-box") as name_box:
            name = gr.Textbox(label="Your name (asked once)", max_length=MAX_NAME, elem_id="rater")
            name_status = gr.Markdown(elem_id="name-status")
            start = gr.Button("Start", variant="primary", elem_id="start")
        with gr.Column(visible=False, elem_id="panel") as panel:
            progress = gr.Markdown(elem_id="progress")
            with gr.Column(elem_id="item") as item_box:
                with gr.Row():
                    shown_image = {"type": "pil", "format": "png", "interactive": False, "buttons": []}
                    generated = gr.Image(label="Generated", elem_id="generated", **shown_image)
                    reference = gr.Image(label="Reference photo", elem_id="reference", **shown_image)
                prompt = gr.Textbox(label="Prompt", interactive=False, elem_id="prompt")
                radios = {
                    key: gr.Radio(choices, label=f"{label} (0-{MAX_SCORE})", elem_id=f"rate-{key}")
                    for key, label in CRITERIA.items()
                }
            with gr.Row():
                back = gr.Button("← Back", elem_id="back")
                skip = gr.Button("Skip →", elem_id="skip")
                switch = gr.Button("Switch rater", elem_id="switch", variant="secondary")
            gr.Markdown("Keys: 0-5 rate the next empty criterion · ← or Backspace: back · → or S: skip.")
        shown_parts = [name_box, panel, item_box, progress, generated, reference, prompt, *radios.values()]
        outputs = [state, remembered, name_status, *shown_parts]

        def screen(rater: str, position: int) -> dict:
            shown = {state: {"rater": rater, "position": position}, remembered: rater}
            shown |= {name_box: gr.Column(visible=False), panel: gr.Column(visible=True)}
            shown[progress] = progress_text(study, rater, position)
            if position >= len(study.items):
                return shown | {item_box: gr.Column(visible=False), prompt: "", **dict.fromkeys(radios.values())}
            item = study.item(rater, position)
            scores = study.db.scores(rater, item.study.image)
            shown |= {item_box: gr.Column(visible=True), generated: load_image(item.path)}
            shown |= {reference: load_image(item.reference), prompt: item.study.prompt or "(no prompt recorded)"}
            return shown | {radio: scores.get(key) for key, radio in radios.items()}

        def unchanged() -> dict:  # gradio reads an empty dict as one output value
            return {progress: gr.skip()}

        def resume(rater: str) -> dict:
            rater = (rater or "").strip()
            if not rater:
                return {name_status: "Please type your name.", name_box: gr.Column(visible=True)}
            return screen(rater, min(study.db.position(rater), len(study.items)))

        def move(current: dict | None, step: int) -> dict:
            if current is None:
                return unchanged()
            position = min(max(current["position"] + step, 0), len(study.items))
            study.db.set_position(current["rater"], position)
            return screen(current["rater"], position)

        def rate(criterion: str, current: dict | None, score: int | None) -> dict:
            if current is None or score is None or current["position"] >= len(study.items):
                return unchanged()
            rater, position = current["rater"], current["position"]
            image = study.item(rater, position).study.image
            before = study.db.save(rater, image, criterion, int(score))
            if criterion not in before and len(before) == len(CRITERIA) - 1:  # this click completed the image
                return move(current, +1)
            return unchanged()  # answers may arrive out of order: only the completing one changes the page

        def sign_out() -> dict:
            hidden = {name_box: gr.Column(visible=True), panel: gr.Column(visible=False)}
            return {state: None, remembered: "", name: "", name_status: "", **hidden}

        page.load(lambda saved: resume(saved) if saved else unchanged(), inputs=[remembered], outputs=outputs)
        start.click(resume, inputs=[name], outputs=outputs)
        name.submit(resume, inputs=[name], outputs=outputs)
        back.click(lambda current: move(current, -1), inputs=[state], outputs=outputs)
        skip.click(lambda current: move(current, +1), inputs=[state], outputs=outputs)
        switch.click(sign_out, outputs=[*outputs, name])
        for key, radio in radios.items():  # a rating saves at once
            radio.input(partial(rate, key), inputs=[state, radio], outputs=outputs)
    return page
