"""Email addresses that only look like another: mixed alphabets and whole-alphabet twins.

Full-width and other compatibility forms are folded away by NFKC before this (see
`accounts.normalize_email`): a full-width address is simply the plain one. What NFKC keeps
apart, the Unicode confusables data (UTS #39, via `confusable_homoglyphs`) judges here:

- Mixed alphabets: a local part or domain label that mixes scripts, such as a Cyrillic "a"
  among Latin letters, is refused. Characters common to all scripts (digits, dots, "+") do not
  count, and the mixes a language really uses (Han with Hiragana and Katakana, Han with Hangul)
  are allowed.
- Whole-alphabet twins: a local part written entirely in letters that each look like a Latin
  one ("ace" typed in Cyrillic) is compared, as its Latin look-alike, with the accounts that exist;
  if that account exists the address is refused. Addresses in one real alphabet with no Latin
  twin (Cyrillic "ivan") are left alone. The check runs at registration only, so an account
  made first under such a twin does not block the Latin address registered after it.
"""

from __future__ import annotations

import functools

from confusable_homoglyphs import categories, confusables

_IGNORED = {"COMMON", "INHERITED"}
_LANGUAGE_MIXES = ({"HAN", "HIRAGANA", "KATAKANA"}, {"HAN", "HANGUL"})


def mixes_alphabets(email: str) -> bool:
    """Return whether the local part or any domain label mixes scripts no language mixes."""
    local, _, domain = email.rpartition("@")
    for label in (local, *domain.split(".")):
        scripts = categories.unique_aliases(label) - _IGNORED
        if len(scripts) > 1 and not any(scripts <= mix for mix in _LANGUAGE_MIXES):
            return True
    return False


def latin_twin(email: str) -> str | None:
    """Return the all-Latin address `email` looks like, if it is not one itself."""
    local, _, domain = email.rpartition("@")
    twin = []
    for char in local:
        if char.isascii():
            twin.append(char)
            continue
        latin = _latin_look_alike(char)
        if latin is None:
            return None
        twin.append(latin)
    candidate = "".join(twin).lower() + "@" + domain
    return None if candidate == email else candidate


@functools.lru_cache(maxsize=4096)
def _latin_look_alike(char: str) -> str | None:
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"]) or []
    for entry in found:
        for glyph in entry["homoglyphs"]:
            if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isalnum():
                return glyph["c"]
    return None
