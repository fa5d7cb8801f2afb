"""Run one fuzz target under atheris (libFuzzer, coverage-guided).

    python tests/fuzz/fuzz.py TARGET [libFuzzer flags...] [CORPUS_DIR...]

TARGET is one of :data:`targets.TARGETS`. The target's seeds are written into the first
corpus directory given (or a temporary one). A crash prints the traceback and leaves the
input in ``crash-<sha1>`` (under ``-artifact_prefix=``); keep it in
``tests/fuzz/regressions/TARGET/`` once fixed. See docs/fuzzing.md.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
# the checkout first on the path: atheris' import hook instruments what the path finder
# loads (an editable install's own finder it would miss)
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

import targets  # noqa: E402 - from the path set just above

OURS = ["simulator", "loadtests", "pushsim"]


def _load_and_instrument(target: targets.Target) -> None:
    """Import what the target reaches (one run of its first seed, or of nothing) with
    pushsim's own modules instrumented for coverage."""
    with atheris.instrument_imports(include=OURS):
        for seed in [b"", *target.seeds()]:
            target.run(seed)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        names = ", ".join(targets.TARGETS)
        sys.exit(f"usage: fuzz.py TARGET [libFuzzer flags] [corpus]; targets: {names}")
    target = targets.TARGETS[sys.argv[1]]
    args = [sys.argv[0], *sys.argv[2:]]
    dirs = [a for a in args[1:] if not a.startswith("-")]
    corpus = Path(dirs[0]) if dirs else Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    if not dirs:
        args.append(str(corpus))
    corpus.mkdir(parents=True, exist_ok=True)
    _load_and_instrument(target)  # before anything imports the modules it reaches
    for seed in target.seeds():
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    atheris.Setup(args, target.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
