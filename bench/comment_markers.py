"""Precision and recall of the comment marker reader on the labelled comment corpora.

    .venv/bin/python -m bench.comment_markers [--corpus dev|held-out|all] [--errors] [--speed]

Reads tests/data/comments_dev.csv and, if present, tests/data/comments_heldout.csv (header
`text,kind,note`; kind is confrontation, withdrawal, risk or none) and prints one markdown
table per corpus: for each kind, the comments labelled so, those found, precision and recall.
A comment counts as found for a kind when the reader finds a marker of that kind in it, with
the default settings and English (`alliance.detectors.read_comment`). `--errors` also lists
the misses and the false finds (for the dev corpus only: tune on dev, not on held-out).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from alliance import comments
from alliance.comments import KINDS, Kind
from alliance.detectors import read_comment

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CORPORA = {"dev": DATA / "comments_dev.csv", "held-out": DATA / "comments_heldout.csv"}
LABELS = (*KINDS, "none")


@dataclass(frozen=True)
class Score:
    kind: Kind
    labelled: int
    found: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.labelled if self.labelled else 1.0


def load(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [(row["text"], row["kind"].strip()) for row in csv.DictReader(f)]
    bad = [kind for _, kind in rows if kind not in LABELS]
    if bad:
        raise ValueError(f"{path.name}: unknown kind(s) {sorted(set(bad))}")
    return rows


def evaluate(rows: list[tuple[str, str]]) -> tuple[dict[Kind, Score], list[str]]:
    found = [read_comment(text).kinds for text, _ in rows]
    scores: dict[Kind, Score] = {}
    errors: list[str] = []
    for kind in KINDS:
        labelled = sum(1 for _, label in rows if label == kind)
        hits = sum(1 for kinds in found if kind in kinds)
        correct = sum(
            1
            for (_, label), kinds in zip(rows, found, strict=True)
            if label == kind and kind in kinds
        )
        scores[kind] = Score(kind, labelled, hits, correct)
    for (text, label), kinds in zip(rows, found, strict=True):
        wrong = {k for k in KINDS if (k in kinds) != (label == k)}
        if wrong:
            errors.append(f"{label:>13} -> {','.join(sorted(kinds)) or 'none':<26} {text}")
    return scores, errors


def table(name: str, rows: list[tuple[str, str]], scores: dict[Kind, Score]) -> str:
    lines = [
        f"{name} ({len(rows)} comments, "
        f"{sum(1 for _, label in rows if label == 'none')} without a marker):",
        "",
        "| kind | labelled | found | correct | precision | recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for score in scores.values():
        lines.append(
            f"| {score.kind} | {score.labelled} | {score.found} | {score.correct} "
            f"| {score.precision:.2f} | {score.recall:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list the dev corpus's errors")
    parser.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    parser.add_argument("--speed", action="store_true", help="also time the reader")
    args = parser.parse_args(argv)
    for name, path in CORPORA.items():
        if args.corpus not in ("all", name):
            continue
        if not path.exists():
            print(f"{name}: {path.name} not found\n")
            continue
        rows = load(path)
        scores, errors = evaluate(rows)
        print(table(name, rows, scores) + "\n")
        if args.errors and name == "dev":
            print("\n".join(errors) + "\n")
    if args.speed:
        print(speed())
    return 0


def speed(rounds: int = 20) -> str:
    """Reading speed on distinct comments (no cache hits): every corpus comment, each round
    with a different number appended, read as the detectors do (markers and risk)."""
    texts = [t for path in CORPORA.values() if path.exists() for t, _ in load(path)]
    comments.read("warm up")  # compiles the patterns once
    start = time.perf_counter()
    for n in range(rounds):
        for text in texts:
            read_comment(f"{text} {n}")
    elapsed = time.perf_counter() - start
    count = rounds * len(texts)
    return (
        f"Reading speed: {count} distinct comments in {elapsed:.2f} s "
        f"({count / elapsed:,.0f} per second, {elapsed / count * 1e6:.0f} µs each; "
        f"Python {sys.version.split()[0]})"
    )


if __name__ == "__main__":
    sys.exit(main())
