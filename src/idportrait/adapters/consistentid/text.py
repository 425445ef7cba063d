"""ConsistentID prompt facts and processing: facial caption marking, prompt assembly, class-token flags.

Data flow (release behaviour, spec §3.4-3.5)::

    caption --remove_duplicate_keywords--> --mark_caption(regions)--> marked caption (+ regions kept)
    user prompt + marked --assemble_prompt--> prompt_face (with <|facial|> markers)
    prompt_face --tokenize_with_markers--> input_ids [77] + flagged class-token positions
    prompt_face --strip_markers--> prompt_text_only (text-only branch)

The region facts (label ids, region keys and their order Face, Eye, Ear, Nose, Lip) live in
:mod:`idportrait.faces.labels`; this module holds what ties them to the caption words.

Per base, the release assembles the prompt differently (`PromptFormat`): SD1.5 joins prompt and caption with
``"Detail:"`` and its caption ends in "one mouth."; SDXL joins with ``"; Detail:"`` and ends in "a mouth.".

Pairing quirk kept for the released weights: regions are in region order (Face, Eye, Ear, Nose, Lip) but
the class words in caption order (face, ears, eyes, nose, mouth), and the k-th region is fused into the
k-th class token, so the "ears" token receives the eye crop and vice versa (``RELEASE_PAIRING``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from idportrait.faces.labels import MAX_REGIONS, REGION_LABELS

FACIAL_CAPTION = "The person has one face, one nose, two eyes, two ears, and one mouth."
SDXL_FACIAL_CAPTION = "The person has one face, one nose, two eyes, two ears, and a mouth."
FACIAL_TOKEN = "<|facial|>"
IMAGE_TOKEN = "<|image|>"
MAX_TOKENS = 77
MAX_CAPTION_CHARS = 330
PAD_TOKEN_ID = 49407


@dataclass(frozen=True)
class PromptFormat:
    """How a release assembles the facial prompt of one base: its built-in caption and the joiner.

    Default assembly ``prompt + joiner + marked caption``; over 77 tokens ``joiner + marked + " Caption:" + prompt``.
    """

    caption: str
    joiner: str


SD15_FORMAT = PromptFormat(caption=FACIAL_CAPTION, joiner="Detail:")
SDXL_FORMAT = PromptFormat(caption=SDXL_FACIAL_CAPTION, joiner="; Detail:")
RELEASE_FORMATS = {"sd15": SD15_FORMAT, "sdxl": SDXL_FORMAT}
"""Base variant (`keymap.CROSS_DIM_VARIANTS`) -> its release's prompt format; other widths use SD1.5's."""

KEYWORDS = ("face", "ears", "eyes", "nose", "mouth")
"""Caption class words; also the order in which marked clauses are rebuilt."""

REGION_KEYWORDS: dict[str, str] = {
    "Face": "face",
    "Left_Ear": "ears",
    "Right_Ear": "ears",
    "Left_Eye": "eyes",
    "Right_Eye": "eyes",
    "Nose": "nose",
    "Upper_Lip": "mouth",
    "Lower_Lip": "mouth",
}
"""Region key -> caption word, in the order the release walks them (which gives the word order)."""

RELEASE_PAIRING = "release"
"""Pairing name for checkpoints: k-th region (region order) -> k-th class token (caption order)."""
TOKEN_PAIRING = "token"
"""Pairing where each flagged class word is fused with (and localized to) its own region."""
PAIRINGS = (RELEASE_PAIRING, TOKEN_PAIRING)

_PIECES = re.compile(r"\b\w+\b|[.,;!?]")
_CLAUSE_END = ",.;"


def remove_duplicate_keywords(text: str) -> str:
    """Keep only the first (case-insensitive) occurrence of each class word.

    The text is split into words and ``.,;!?`` (other characters are dropped) and re-joined with single
    spaces; a removed word leaves an empty piece (a double space).
    """
    pieces = _PIECES.findall(text)
    for keyword in KEYWORDS:
        seen = False
        for i, piece in enumerate(pieces):
            if piece.lower() == keyword:
                if seen:
                    pieces[i] = ""
                seen = True
    return " ".join(pieces)


def caption_features(regions: list[str]) -> list[str]:
    """Class words of the present regions, without repeats, in caption order (face, ears, eyes, nose, mouth)."""
    features: list[str] = []
    for key, word in REGION_KEYWORDS.items():
        if key in regions and word not in features:
            features.append(word)
    return features


def mark_caption(caption: str, regions: list[str]) -> tuple[str, list[str]]:
    """Mark the class words of present regions and rebuild the caption from the marked clauses.

    Args:
        caption: the facial caption (``FACIAL_CAPTION`` at inference).
        regions: region keys present (region order), e.g. ``["Face", "Left_Eye", "Left_Ear", "Nose", "Upper_Lip"]``.

    Returns:
        The marked caption (each class word followed by `` <|facial|>``, clauses in caption order, each ending
        in ``,``) and the regions kept (those whose word was found), in region order.
    """
    text = remove_duplicate_keywords(caption)
    features = caption_features(regions)
    kept = list(regions)
    for word in reversed(features):
        marked = re.sub(rf"\b{word}\b", f"{word} <|{word}|>", text, count=1)
        if marked == text:
            kept = [key for key in kept if REGION_KEYWORDS.get(key) != word]
        text = marked
    text = text.replace("\n", "")

    clauses = []
    for word in features:
        start = text.find(f"<|{word}|>")
        if start < 0:
            continue
        end = start + len(f"<|{word}|>")
        while start > 0 and text[start - 1] not in _CLAUSE_END:
            start -= 1
        while end < len(text) and text[end] not in _CLAUSE_END:
            end += 1
        clauses.append(text[start:end].strip() + ",")
        text = text[:start] + text[end:]
    marked = " ".join(clauses)
    for word in KEYWORDS:
        marked = marked.replace(f"<|{word}|>", FACIAL_TOKEN)
    return marked, kept


def assemble_prompt(
    tokenizer, user_prompt: str, marked_caption: str, caption: str, joiner: str = SD15_FORMAT.joiner
) -> tuple[str, bool, bool, int]:
    """``user_prompt + joiner + marked``, or ``joiner + marked + " Caption:" + user_prompt`` over 77 tokens.

    ``joiner``: the base's (`PromptFormat`; SD1.5 ``"Detail:"``, SDXL ``"; Detail:"``).
    Returns ``(prompt_face, alternate_used, caption_too_long, n_tokens_default)``; ``n_tokens_default`` counts the
    default assembly with BOS/EOS and one id per marker. A raw caption over 330 characters gives the plain prompt.
    """
    prompt_face = user_prompt + joiner + marked_caption
    n_tokens = len(tokenizer(prompt_face, truncation=False).input_ids)
    too_long = len(caption) > MAX_CAPTION_CHARS
    alternate = n_tokens > MAX_TOKENS and not too_long
    if alternate:
        prompt_face = joiner + marked_caption + " Caption:" + user_prompt
    if too_long:
        prompt_face = user_prompt
    return prompt_face, alternate, too_long, n_tokens


def tokenize_with_markers(
    tokenizer, prompt_face: str, max_length: int = MAX_TOKENS, facial_id: int | None = None
) -> tuple[list[int], list[int]]:
    """Token ids with the markers removed, padded (with the tokenizer's pad token) or cut to ``max_length``, and
    the flagged class-token positions.

    The token right before each ``<|facial|>`` is flagged; flags lost to truncation are dropped (no EOS is added
    back after truncation, as in the release). ``facial_id``: the marker's id, default this tokenizer's. The
    release's SDXL code passes the first tokenizer's id with ``tokenizer_2``, which does not know the marker: its
    ids keep the marker's BPE pieces and nothing is flagged.
    """
    if facial_id is None:
        facial_id = tokenizer.convert_tokens_to_ids(FACIAL_TOKEN)
    pad_id = PAD_TOKEN_ID if tokenizer.pad_token_id is None else tokenizer.pad_token_id
    ids: list[int] = []
    flagged: list[int] = []
    for token_id in tokenizer(prompt_face, truncation=False).input_ids:
        if token_id == facial_id:
            flagged.append(len(ids) - 1)
        else:
            ids.append(token_id)
    ids = ids[:max_length] + [pad_id] * max(0, max_length - len(ids))
    return ids, [p for p in flagged if 0 <= p < max_length]


def facial_token_index(positions: list[int], max_regions: int = MAX_REGIONS) -> tuple[list[int], list[bool]]:
    """Flagged positions padded with 0 to ``max_regions``, and the validity mask."""
    positions = positions[:max_regions]
    pad = max_regions - len(positions)
    return positions + [0] * pad, [True] * len(positions) + [False] * pad


def strip_markers(prompt_face: str) -> str:
    """Delete ``<|facial|>`` and ``<|image|>`` (surrounding spaces stay)."""
    return prompt_face.replace(FACIAL_TOKEN, "").replace(IMAGE_TOKEN, "")


def add_consistentid_tokens(tokenizer, facial: bool = True) -> int | None:
    """Add ``<|image|>`` and ``<|facial|>`` as special tokens (49408, 49409 on the SD1.5 vocabulary).

    Returns the ``<|facial|>`` id. ``facial=False`` adds ``<|image|>`` only (the release's ``tokenizer_2``) and
    returns None. Idempotent.
    """
    tokenizer.add_tokens([IMAGE_TOKEN, FACIAL_TOKEN] if facial else [IMAGE_TOKEN], special_tokens=True)
    return tokenizer.convert_tokens_to_ids(FACIAL_TOKEN) if facial else None


def token_order(regions: list[str]) -> list[str]:
    """Regions sorted by their class word's caption position (face, ears, eyes, nose, mouth)."""
    return sorted(regions, key=lambda key: KEYWORDS.index(REGION_KEYWORDS[key]))


def token_regions(regions: list[str], n_tokens: int, pairing: str = RELEASE_PAIRING) -> list[str]:
    """Region key fused into each of the first ``n_tokens`` flagged tokens, in token order.

    ``release``: the k-th region in region order; ``token``: each class word's own region.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"unknown region pairing {pairing!r}; expected one of {PAIRINGS}")
    return (token_order(regions) if pairing == TOKEN_PAIRING else regions)[:n_tokens]


@dataclass
class FacialPrompt:
    """Everything the ConsistentID pipeline needs from one (prompt, regions) pair.

    ``input_ids`` [77] feed the text encoder; FacialEncoder fuses region k into ``facial_token_idx[k]`` for every
    k with ``facial_token_idx_mask[k]`` (also the valid-region mask); ``regions`` are the crops' keys in order.
    """

    prompt_face: str
    prompt_text_only: str
    marked_caption: str
    input_ids: list[int]
    class_token_positions: list[int]
    facial_token_idx: list[int]
    facial_token_idx_mask: list[bool]
    regions: list[str]
    text_only_input_ids: list[int]
    alternate_assembly_used: bool
    caption_too_long_fallback: bool
    n_tokens_default_assembly: int

    @property
    def region_label_values(self) -> list[int]:
        return [REGION_LABELS[key] for key in self.regions]

    @property
    def class_tokens_mask(self) -> list[bool]:
        """Bool mask [77], True at the flagged positions."""
        flagged = set(self.class_token_positions)
        return [i in flagged for i in range(MAX_TOKENS)]


def build_facial_prompt(
    tokenizer,
    user_prompt: str,
    regions: list[str],
    caption: str = FACIAL_CAPTION,
    joiner: str = SD15_FORMAT.joiner,
) -> FacialPrompt:
    """Release-compatible prompt processing. ``tokenizer`` must know ``<|facial|>`` (:func:`add_consistentid_tokens`).

    Args:
        tokenizer: CLIP tokenizer of the base model (SD1.5: openai/clip-vit-large-patch14; SDXL: its first).
        user_prompt: the user's prompt.
        regions: region keys from face parsing, region order (``idportrait.faces.labels.select_regions``).
        caption: the facial caption template.
        joiner: between prompt and caption (`PromptFormat.joiner` of the base).
    """
    marked, kept = mark_caption(caption, regions)
    prompt_face, alternate, too_long, n_tokens = assemble_prompt(tokenizer, user_prompt, marked, caption, joiner)
    input_ids, positions = tokenize_with_markers(tokenizer, prompt_face)
    token_idx, token_mask = facial_token_index(positions)
    text_only = strip_markers(prompt_face)
    text_only_ids = tokenizer(text_only, max_length=MAX_TOKENS, padding="max_length", truncation=True).input_ids
    return FacialPrompt(
        prompt_face=prompt_face,
        prompt_text_only=text_only,
        marked_caption=marked,
        input_ids=input_ids,
        class_token_positions=positions,
        facial_token_idx=token_idx,
        facial_token_idx_mask=token_mask,
        regions=kept,
        text_only_input_ids=text_only_ids,
        alternate_assembly_used=alternate,
        caption_too_long_fallback=too_long,
        n_tokens_default_assembly=n_tokens,
    )
