"""Text: stable ids and answer normalisation."""

from __future__ import annotations

import hashlib
import re
import string


def stable_id(prefix: str, text: str) -> str:
    """A short id that depends only on the text (stable across subsets, orderings and file formats)."""
    return f"{prefix}-{hashlib.sha1(text.strip().encode('utf-8')).hexdigest()[:12]}"


def normalize_answer(text: str) -> str:
    """TriviaQA-style normalisation: lower case, punctuation and articles removed, whitespace collapsed."""
    text = text.lower()
    text = "".join(" " if ch in string.punctuation or ch in "‘’“”" else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())
