"""Rewrite a USMLE exam vignette as a user asking about a relative (see `medqa_conv`).

The rules are documented in `warmeval.tasks.medqa_conv`'s module docstring. Everything here is a pure function of the
vignette text and the seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter

_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"

# "A 21-year-old ...", "An otherwise healthy 50-year-old ...", "A 37-year-old-woman ...", "A one-day-old male ..."
_OPENING = re.compile(
    r"^An?\s+"
    rf"(?:(?P<health>(?:previously|otherwise)\s+healthy|healthy)\s+)?"
    rf"(?P<num>\d+|{_NUMBER_WORDS})[- ](?P<unit>year|month|week|day)s?[- ]old[- ]",
    re.IGNORECASE,
)

_SEX_NOUNS = {
    "man": "M", "male": "M", "boy": "M", "gentleman": "M", "businessman": "M", "fisherman": "M",
    "woman": "F", "female": "F", "girl": "F", "lady": "F", "primigravida": "F", "primigravid": "F",
    "multigravida": "F", "multigravid": "F", "pregnant": "F",
}  # fmt: skip
# Head nouns that say nothing beyond age and sex: dropped, the relation replaces them.
_GENERIC_NOUNS = {
    "man", "woman", "boy", "girl", "male", "female", "gentleman", "lady", "patient", "person", "individual",
    "child", "kid", "infant", "newborn", "neonate", "baby", "toddler", "adolescent", "teenager", "teen",
}  # fmt: skip
# Words that end the subject noun phrase: a verb, a preposition or a relative pronoun.
_MAIN_VERBS = (
    "presents|presented|comes|came|is|was|has|had|visits|visited|arrives|arrived|undergoes|underwent|develops|"
    "developed|returns|returned|complains|complained|reports|reported|experiences|attends|follows|delivers|makes|"
    "sees|seeks|goes|calls|collapses|dies|begins|wants|receives|asks|suffers|schedules|gives|notices|needs|decides|"
    "requests|consults|started|starts|becomes|became|jumps|eats|ate|gave|falls|fell|loses|lost|takes|took|uses|"
    "sustains|sustained|travels|traveled|wakes|feels|felt|presents"
)
_STRONG_VERBS = re.compile(
    r"\b(?:presents|presented|comes|came|visits|visited|arrives|arrived|schedules|seeks|"
    r"(?:is|was)\s+(?:brought|admitted|evaluated|referred|seen|hospitalized|taken|transferred|transported|found))\b"
)
_WEAK_VERBS = re.compile(rf"\b(?:{_MAIN_VERBS})\b")
_NP_STOP = re.compile(
    rf"^(?:{_MAIN_VERBS}|with|who|whose|that|at|in|from|of|on|after|during|for|to|by|recovering|undergoing|"
    r"complaining|currently|suddenly|being|involved|accidentally|\()$"
)
# Head nouns naming a role ("college student", "executive"): kept as an appositive.
_ROLE_NOUN = re.compile(
    r"(?:student|player|worker|nurse|executive|driver|mechanic|zookeeper|fisherman|businessman|athlete|soldier|"
    r"recruit|runner|farmer|teacher|physician|resident|veteran|immigrant|swimmer|hiker|primigravida|multigravida|"
    r"gravida|man|woman|boy|girl|male|female|gentleman|lady|[a-z]{3,}(?:er|or|ist|ian))$",
    re.IGNORECASE,
)
_OBSTETRIC = re.compile(r"^(?:G\d+P\d+\w*|gravida|para|\d+)$")

# Verb adaptations at the start of the predicate: the speaker is not the one at the clinic.
_VERB_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^presents with\b"), "has"),
    (re.compile(r"^presented with\b"), "had"),
    (re.compile(r"^presents to\b"), "goes to"),
    (re.compile(r"^presented to\b"), "went to"),
    (re.compile(r"^presents for\b"), "goes in for"),
    (re.compile(r"^presents\b"), "comes in"),
    (re.compile(r"^presented\b"), "came in"),
    (re.compile(r"^comes to\b"), "goes to"),
    (re.compile(r"^comes in\b"), "goes in"),
    (re.compile(r"^comes for\b"), "goes in for"),
    (re.compile(r"^came to\b"), "went to"),
)

_FOLLOWING = re.compile(r"\b(?P<which>[Ww]hich)(?: one)? of the following\b\s*")
# Words that can follow "which of the following" directly: then the phrase becomes "What".
_PREDICATE_WORDS = {
    "is", "are", "was", "were", "would", "will", "could", "should", "can", "may", "might", "must", "best", "most",
    "least", "has", "have", "had", "does", "do", "did", "explains", "describes", "represents", "accounts",
    "increases", "decreases", "causes", "prevents", "correctly", "likely", "also", "more",
}  # fmt: skip
_SINGULAR_VERBS = {
    "is",
    "was",
    "has",
    "does",
    "best",
    "most",
    "would",
    "will",
    "could",
    "should",
    "can",
    "may",
    "might",
}
_SENTENCE_END = re.compile(r"(?<=[.?!:])\s+(?=[A-Z])|\n+")


def _stable_rng(vignette: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x00{vignette}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _numbers(text: str) -> Counter[str]:
    return Counter(re.findall(r"\d+(?:\.\d+)?", text))


def _infer_sex(np_words: list[str], text: str) -> str | None:
    for word in np_words:
        sex = _SEX_NOUNS.get(word.lower())
        if sex:
            return sex
        if re.match(r"^G\d+P\d+", word) or word.lower() == "gravida":
            return "F"
    male = len(re.findall(r"\b(?:he|him|his|himself)\b", text, re.IGNORECASE))
    female = len(re.findall(r"\b(?:she|her|hers|herself)\b", text, re.IGNORECASE))
    if male == female:
        return None
    return "M" if male > female else "F"


def _relation(age: int, unit: str, sex: str, rng: random.Random) -> str:
    if unit != "year" or age < 18:
        return "son" if sex == "M" else "daughter"
    if age >= 60:
        return "father" if sex == "M" else "mother"
    if rng.random() < 0.5:
        return "brother" if sex == "M" else "sister"
    return "husband" if sex == "M" else "wife"


def _singular(word: str) -> str:
    lower = word.lower()
    if re.search(r"[oy]ses$", lower):
        return word[:-2] + "is"
    if lower.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(?:ss|x|ch|sh|ses)es$", lower):
        return word[:-2]
    if lower.endswith("s") and not re.search(r"(?:ss|us|is)$", lower):
        return word[:-1]
    return word


def convert_question(sentence: str, relation: str | None = None) -> str:
    """Turn an exam stem ("Which of the following is ...?") into a direct question ("What is ...?").

    Args:
        sentence: The closing sentence of a vignette.
        relation: When given, "this patient" becomes "my <relation>".

    Returns:
        The rewritten sentence, with its first letter capitalised.
    """
    match = _FOLLOWING.search(sentence)
    if match:
        after = sentence[match.end() :]
        words = after.split(" ")
        first = re.sub(r"[^\w]", "", words[0]).lower() if words else ""
        if not first or first in _PREDICATE_WORDS or first.endswith("ly"):
            replacement = "What" if match.group("which")[0] == "W" else "what"
            sentence = sentence[: match.start()] + replacement + (" " + after if first else after)
        else:
            # A noun phrase follows: "which of the following drugs is" -> "which drug is".
            np_end = 0
            while np_end < len(words) and re.sub(r"[^\w]", "", words[np_end]).lower() not in _PREDICATE_WORDS:
                if re.search(r"[?,.;:]$", words[np_end]):
                    np_end += 1
                    break
                np_end += 1
            next_word = re.sub(r"[^\w]", "", words[np_end]).lower() if np_end < len(words) else ""
            head = np_end - 1
            if head >= 0 and (next_word in _SINGULAR_VERBS or next_word == ""):
                core = re.match(r"^(\w+)(\W*)$", words[head])
                if core:
                    words[head] = _singular(core.group(1)) + core.group(2)
            sentence = sentence[: match.start()] + match.group("which") + " " + " ".join(words)
    if relation:
        sentence = re.sub(r"\b[Tt](?:his|he) patient\b", f"my {relation}", sentence)
    return sentence[:1].upper() + sentence[1:]


# The authors' rewrite (style "paper"), inferred from the 19 distinct MedQA rows of their sample_data: the age and the
# next two words become "My <relative>, <age>," and "which of the following" becomes "what" wherever it stands.
_PAPER_OPENING = re.compile(r"^An? (?P<age>\d+)-year-old (?P<w1>\S+) (?P<w2>\S+) ")
_PAPER_MALE = {"man", "male", "boy", "gentleman"}
_PAPER_FEMALE = {"woman", "female", "girl", "lady"}
_PAPER_RELATIVES = {"M": ("son", "brother", "husband", "father"), "F": ("daughter", "sister", "wife", "mother")}
# Cut points: the sample shows 2 -> child, 21-22 -> sibling, 25-58 -> spouse, 63-78 -> parent. The exact boundaries
# between those ages are not attested; these are the midpoints one would choose (child < 18, sibling < 23, spouse < 60).
PAPER_AGE_CUTS = (18, 23, 60)


def _paper_relative(age: int, sex: str) -> str:
    index = sum(age >= cut for cut in PAPER_AGE_CUTS)
    return _PAPER_RELATIVES[sex][index]


def _paper_sex(words: tuple[str, str], text: str) -> str | None:
    for word in words:
        word = word.lower().strip(",.;:")
        if word in _PAPER_MALE:
            return "M"
        if word in _PAPER_FEMALE:
            return "F"
    male = len(re.findall(r"\b(?:he|his|him)\b", text, re.IGNORECASE))
    female = len(re.findall(r"\b(?:she|her|hers)\b", text, re.IGNORECASE))
    return "M" if male > female else "F" if female > male else None


def paper_conversational(vignette: str) -> str | None:
    """The authors' rewrite of a vignette, quirks included (see `warmeval.tasks.medqa_conv`); None if unchanged."""
    text = vignette.strip()
    opening = _PAPER_OPENING.match(text)
    if opening:
        sex = _paper_sex((opening.group("w1"), opening.group("w2")), text)
        if sex is not None:
            age = opening.group("age")
            text = f"My {_paper_relative(int(age), sex)}, {age}, " + text[opening.end() :]
    text = text.replace("Which of the following", "what").replace("which of the following", "what")
    return None if text == vignette.strip() else text


def to_conversational(vignette: str, *, seed: int, style: str = "paper") -> str | None:
    """Rewrite a vignette in the voice of a relative; see `warmeval.tasks.medqa_conv` for both styles' rules.

    Args:
        vignette: The exam question text (without options).
        seed: Clean style: chooses between sibling and spouse for adults, deterministically per vignette. The paper
            style uses no randomness.
        style: ``paper`` (the authors' rewrite, as inferred from their sample rows) or ``clean`` (warmeval's).

    Returns:
        The rewritten text, or None when no rule matches (the caller keeps the vignette unchanged).
    """
    if style == "paper":
        return paper_conversational(vignette)
    if style != "clean":
        raise ValueError(f"unknown rewrite style {style!r}: use paper or clean")
    text = vignette.strip()
    opening = _OPENING.match(text)
    if not opening:
        return None
    num = opening.group("num").lower()
    age = int(num) if num.isdigit() else _NUMBER_WORDS.split("|").index(num) + 1
    unit = opening.group("unit").lower()
    rest = text[opening.end() :]

    # The subject noun phrase runs up to the first verb, preposition, relative pronoun or punctuation.
    np_words: list[str] = []
    cursor = 0
    for token in re.finditer(r"[^\s,;:.()]+|[,;:.()]", rest):
        word = token.group(0)
        if _NP_STOP.match(word) or not re.match(r"^[\w'’-]+$", word):
            break
        np_words.append(word)
        cursor = token.end()
    if not np_words:
        return None
    predicate = rest[cursor:].lstrip()

    sex = _infer_sex(np_words, text)
    if sex is None:
        return None
    relation = _relation(age, unit, sex, _stable_rng(text, seed))

    head = np_words[-1]
    if not (head.lower() in _GENERIC_NOUNS or _OBSTETRIC.match(head) or _ROLE_NOUN.search(head)):
        return None
    qualifiers: list[str] = []
    appositive = ""
    if head.lower() in _GENERIC_NOUNS or _OBSTETRIC.match(head) and len(np_words) > 1:
        qualifiers = [w for w in np_words if w.lower() not in _SEX_NOUNS and w.lower() not in _GENERIC_NOUNS]
        if head.lower() not in _GENERIC_NOUNS:
            qualifiers, appositive = [], " ".join(w for w in np_words if w.lower() not in _SEX_NOUNS)
    else:
        role = " ".join(w for w in np_words if w.lower() not in {"male", "female"})
        appositive = role if _OBSTETRIC.match(np_words[0]) else f"{'an' if role[0].lower() in 'aeiou' else 'a'} {role}"
    if opening.group("health"):
        qualifiers.insert(0, opening.group("health").lower())

    age_text = str(age) if unit == "year" else f"{num} {unit}{'' if age == 1 else 's'} old"
    subject = "My " + " ".join([*qualifiers, relation]) + f", {age_text},"
    if appositive:
        subject += f" {appositive},"

    # A modifier ("with a history of ...", "who was diagnosed ...", ", gravida 2,") may stand before the main verb.
    first_sentence_end = re.search(r"\.(?:\s|$)", predicate)
    limit = first_sentence_end.start() if first_sentence_end else len(predicate)
    if _WEAK_VERBS.match(predicate):
        modifier, verb_phrase = "", predicate
    else:
        verb = _STRONG_VERBS.search(predicate, 0, limit) or _WEAK_VERBS.search(predicate, 1, limit)
        if verb is None:
            return None
        modifier = predicate[: verb.start()].strip(" ,")
        verb_phrase = predicate[verb.start() :]
        if re.fullmatch(r"\w+ly", modifier):  # an adverb before the verb is no modifier clause
            modifier, verb_phrase = "", predicate
    for pattern, replacement in _VERB_RULES:
        if pattern.match(verb_phrase):
            verb_phrase = pattern.sub(replacement, verb_phrase, count=1)
            break
    body = f"{subject} {modifier}, {verb_phrase}" if modifier else f"{subject} {verb_phrase}"

    pronoun, possessive = ("He", "His") if sex == "M" else ("She", "Her")
    body = re.sub(r"(?<=[.!?]\s)The patient['’]s\b", possessive, body)
    body = re.sub(r"(?<=[.!?]\s)The patient\b", pronoun, body)

    # The closing sentence becomes a direct question.
    # The closing question is the last sentence with a question mark (a table may follow it), else the last one.
    starts = [0, *(m.end() for m in _SENTENCE_END.finditer(body))]
    ends = [*starts[1:], len(body)]
    spans = list(zip(starts, ends, strict=True))
    start, end = next(((a, b) for a, b in reversed(spans) if "?" in body[a:b]), spans[-1])
    body = body[:start] + convert_question(body[start:end], relation) + body[end:]

    if _numbers(body) != _numbers(text):
        return None
    return body
