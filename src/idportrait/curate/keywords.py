"""Person keywords: the shipped word lists compiled into one case-insensitive, word-bounded regex.

Lists live in ``idportrait/data/curate/keywords/<name>.txt`` (one entry per line, ``#`` comments).
Matching rules:

- case-insensitive, on whole words only (no match inside "mandate" for "man");
- an entry's spaces and hyphens match any run of spaces/hyphens ("self portrait" == "self-portrait");
- every entry also matches with a regular plural suffix "s" or "es", and entries ending in "man" with
  "men" ("frenchman" -> "frenchmen"); other irregular plurals are listed;
- the lists are merged into a character trie and emitted as one regex, so a caption is scanned once
  whatever the number of entries.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

_SEP = "\0"  # stands for "one or more spaces or hyphens" inside the trie
_APOSTROPHE = "\1"


def load_keyword_list(name: str) -> list[str]:
    """Entries of ``data/curate/keywords/<name>.txt``, lower-cased, comments and blanks removed."""
    path = resources.files("idportrait") / "data" / "curate" / "keywords" / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"keyword list {name!r} not found at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip().lower() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _normalise(entry: str) -> str:
    entry = re.sub(r"[\s\-]+", _SEP, entry.strip().lower())
    return re.sub(r"['’]", _APOSTROPHE, entry)


def _trie_regex(words: list[str]) -> str:
    """Regex source matching exactly ``words``, built from their character trie."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _emit(trie)


def _emit(node: dict) -> str:
    if set(node) == {""}:
        return ""
    optional = "" in node
    branches = [_char(char) + _emit(child) for char, child in sorted(node.items()) if char]
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if optional:
        return f"(?:{body})?"
    return body


def _char(char: str) -> str:
    if char == _SEP:
        return r"[\s\-]+"
    if char == _APOSTROPHE:
        return "['’]"
    return re.escape(char)


def compile_keywords(entries: list[str], plural_only: bool = False) -> re.Pattern[str]:
    """One pattern matching any entry as a whole word (optional plural "s"/"es"), case-insensitive;
    ``plural_only``: only the plural forms ("Mexicans", "Frenchmen"), the nouns that name people."""
    words = {_normalise(e) for e in entries if e.strip()}
    if not words:
        raise ValueError("no keyword entries to compile")
    men = {w[:-3] + "men" for w in words if w.endswith("man")}
    if not plural_only:
        return re.compile(rf"(?<!\w)(?:{_trie_regex(sorted(words | men))})(?:e?s)?(?!\w)", re.IGNORECASE)
    plurals = rf"{_trie_regex(sorted(words))}e?s" + (f"|{_trie_regex(sorted(men))}" if men else "")
    return re.compile(rf"(?<!\w)(?:{plurals})(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=16)
def person_keyword_pattern(lists: tuple[str, ...], plural_only: bool = False) -> re.Pattern[str]:
    """The compiled pattern of the named lists (cached per process)."""
    return compile_keywords([entry for name in lists for entry in load_keyword_list(name)], plural_only)


def find_person_keyword(caption: str, lists: tuple[str, ...], adjective_lists: tuple[str, ...] = ()) -> str | None:
    """The first keyword occurrence in ``caption`` (as written there), or None. Words of ``adjective_lists``
    (a subset of ``lists``) count only in the plural ("Mexicans", not "Mexican pottery")."""
    nouns = tuple(name for name in lists if name not in adjective_lists)
    adjectives = tuple(name for name in lists if name in adjective_lists)
    match = person_keyword_pattern(nouns).search(caption) if nouns else None
    if match is None and adjectives:
        match = person_keyword_pattern(adjectives, plural_only=True).search(caption)
    return None if match is None else match.group(0)


CREDIT = re.compile(
    r"\bby\s+@?(?P<name>[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,2}|[a-z][a-z0-9_.]{3,})\s*(?:[,.(|].*)?$",
)
"""A closing credit line: "<title> by <Name>" (up to three capitalised words) or "by <username>"."""


def find_credit(caption: str) -> str | None:
    """The credited name of a caption that ends with "... by <Name>" (artist, author, photographer), or None.

    Web captions of prints, books and albums name their maker this way; "by" starts the credit in
    any case ("By"), the name is capitalised or a lower-case user name, and only a price, a code in
    brackets or a trailing remark may follow it.
    """
    match = CREDIT.search(caption) or CREDIT.search(caption.replace(" By ", " by "))
    return None if match is None else match.group("name")
