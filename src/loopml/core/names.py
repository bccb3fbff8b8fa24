"""Readable generated run names such as ``brave-otter-417``."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "agile amber bold brave bright calm clever crisp daring eager fair fast gentle glad grand "
    "happy honest keen kind lively lucid merry mighty neat noble patient proud quick quiet "
    "rapid sharp shy silent sleek smart snowy solid steady sunny swift tidy vivid warm wise"
).split()
_NOUNS = (
    "badger bear beaver bison crane crow deer dolphin eagle falcon ferret finch fox gecko "
    "hawk heron ibis jackal koala lark lemur lion lynx mole moose newt orca otter owl panda "
    "pike puffin quail raven robin seal shark sloth stork swan tiger toad trout wolf wren yak"
).split()


def generate_run_name(rng: random.Random | None = None) -> str:
    r = rng or random
    return f"{r.choice(_ADJECTIVES)}-{r.choice(_NOUNS)}-{r.randrange(1000)}"
