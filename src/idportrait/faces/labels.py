"""CelebAMask-HQ face-parsing classes and ConsistentID's facial regions: the one place for these facts.

BiSeNet (face-parsing.PyTorch, ``79999_iter.pth`` = ConsistentID ``face_parsing.pth``) predicts the 19
classes below, in this id order. ConsistentID keeps five facial regions: face skin (1), one eye (4/5),
one ear (7/8), nose (10) and one lip (12/13). Of each left/right (upper/lower) pair only the lower id
that is present is kept, and regions are ordered by ascending id: Face, Eye, Ear, Nose, Lip.
"""

from __future__ import annotations

NUM_CLASSES = 19

CLASS_NAMES: tuple[str, ...] = (
    "Background",
    "Face",
    "Left_Eyebrow",
    "Right_Eyebrow",
    "Left_Eye",
    "Right_Eye",
    "Eyeglasses",
    "Left_Ear",
    "Right_Ear",
    "Earring",
    "Nose",
    "Mouth",
    "Upper_Lip",
    "Lower_Lip",
    "Neck",
    "Necklace",
    "Clothing",
    "Hair",
    "Hat",
)
"""Class id -> name (ConsistentID's names for face-parsing.PyTorch's skin, l_brow, r_brow, l_eye, ...)."""

CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}

BACKGROUND = 0

REGION_LABELS: dict[str, int] = {
    "Face": 1,
    "Left_Eye": 4,
    "Right_Eye": 5,
    "Left_Ear": 7,
    "Right_Ear": 8,
    "Nose": 10,
    "Upper_Lip": 12,
    "Lower_Lip": 13,
}
"""Region-dict key -> class id for the labels ConsistentID uses, in ascending id order."""

REGION_GROUPS: dict[str, str] = {
    "Face": "Face",
    "Left_Eye": "Eye",
    "Right_Eye": "Eye",
    "Left_Ear": "Ear",
    "Right_Ear": "Ear",
    "Nose": "Nose",
    "Upper_Lip": "Lip",
    "Lower_Lip": "Lip",
}
"""Region-dict key -> its group; at most one key per group is kept (the lowest present id)."""

REGION_GROUP_ORDER: tuple[str, ...] = ("Face", "Eye", "Ear", "Nose", "Lip")
"""Order of the (at most 5) regions in a ConsistentID region dict."""

MAX_REGIONS = len(REGION_GROUP_ORDER)


def select_regions(present_labels: set[int] | list[int]) -> list[str]:
    """Region keys kept for the given present class ids, in region order.

    >>> select_regions({0, 1, 5, 7, 8, 10, 13, 17})
    ['Face', 'Right_Eye', 'Left_Ear', 'Nose', 'Lower_Lip']
    """
    present = set(int(v) for v in present_labels)
    kept: dict[str, str] = {}
    for key, label in REGION_LABELS.items():
        group = REGION_GROUPS[key]
        if label in present and group not in kept:
            kept[group] = key
    return [kept[g] for g in REGION_GROUP_ORDER if g in kept]
