"""Concurrent writers of one index: W processes each ingest R files of their own, one per round, all at once.

Every file must end up in the final generation (found by its unique word) or its writer must have been
refused with a one-line message; a writer that exits 0 while its file is missing is a silent loss.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from assistant.index_access import open_index
from assistant.settings import load_settings

_WRITER = """
import sys
from pathlib import Path
from assistant.index_access import index_config
from assistant.settings import load_settings
from index.ingest import ingest_paths
settings = load_settings({"index": {"dir": sys.argv[1]}})
for name in sys.argv[2:]:
    ingest_paths([Path(name)], settings.index.dir, index_config(settings))
"""


def _word(writer: int, round_: int) -> str:
    """A token no other file contains (and the BM25 tokenizer keeps whole)."""
    return f"zephyrword{chr(97 + writer)}{chr(97 + round_)}"


def make_files(docs: Path, writers: int, rounds: int) -> dict[str, Path]:
    docs.mkdir(parents=True, exist_ok=True)
    files = {}
    for w in range(writers):
        for r in range(rounds):
            path = docs / f"writer{w}_round{r}.txt"
            path.write_text(f"Note {w}.{r}\n\nThis note mentions {_word(w, r)} once.\n", encoding="utf-8")
            files[_word(w, r)] = path
    return files


def run_stress(root: Path, writers: int, rounds: int) -> dict[str, object]:
    """Start the writers together, wait for all, then look for every file in the committed index."""
    index_dir = root / "index"
    files = make_files(root / "docs", writers, rounds)
    words = sorted(files)
    owned = [words[w * rounds : (w + 1) * rounds] for w in range(writers)]
    env = {**os.environ, "RA_CONFIG": str(root / "none.toml")}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(index_dir), *(str(files[word]) for word in owned[w])],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    outcomes = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
    seconds = time.perf_counter() - started

    index = open_index(load_settings({"index": {"dir": index_dir}}))
    indexed = {Path(key).name for key in index.manifest.files}

    def present(word: str) -> bool:
        hits = index.search(word, k=1, mode="bm25")
        name = files[word].name
        return name in indexed and bool(hits) and Path(hits[0].chunk.source).name == name

    lost = [word for word in words if not present(word)]
    refused = [w for w, (rc, err) in enumerate(outcomes) if rc != 0 and "Traceback" not in err]
    silent = [word for word in lost if not any(word in owned[w] for w in refused)]
    return {
        "writers": writers,
        "rounds": rounds,
        "files": len(files),
        "files_present": len(files) - len(lost),
        "files_lost_silently": len(silent),
        "writers_refused": len(refused),
        "tracebacks": sum("Traceback" in err for _, err in outcomes),
        "seconds": round(seconds, 1),
        "lost": [files[word].name for word in lost],
        "errors": [err.strip().splitlines()[-1] for rc, err in outcomes if rc != 0 and err.strip()],
    }
