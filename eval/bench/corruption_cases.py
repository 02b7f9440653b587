"""Damaged indexes: each case breaks a copy of a small, healthy index one way, then runs the CLI on it.

Every command must end in a result or a one-line error (never a traceback); damage must be reported by
`ra index verify`; and after the advised fix (`ra ingest DOCS --rebuild`) every document must be found
again ("data lost" counts those that are not). The CLI runs in-process (`assistant.cli.main.main`, the
`ra` entry point), so an exception escaping it is exactly what a user would see as a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DOCS = {
    "alpaca.txt": "Stanford Alpaca\n\nAlpaca 7B was fine-tuned on quokkaword demonstrations.\n",
    "glide.md": "# GLIDE\n\nHuman evaluators preferred wombatword guidance for photorealism.\n",
    "page.html": "<html><head><title>MRL</title></head><body><p>Matryoshka numbatword embeddings.</p></body></html>",
}
WORDS = {"alpaca.txt": "quokkaword", "glide.md": "wombatword", "page.html": "numbatword"}
NOBODY = 65534


@dataclass
class CliRun:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    traceback: str | None  # the exception that escaped the CLI, if any

    @property
    def one_line_error(self) -> bool:
        return self.exit_code != 0 and self.traceback is None and len(self.stderr.strip().splitlines()) == 1


def run_cli(*args: str) -> CliRun:
    """`ra ARGS` in this process, with its stdout, stderr and exit code."""
    from assistant.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code, escaped = 0, None
    argv = sys.argv
    sys.argv = ["ra", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # exactly what the battery counts
        code, escaped = 1, f"{type(exc).__name__}: {exc}"
    finally:
        sys.argv = argv
    return CliRun(list(args), code, out.getvalue(), err.getvalue(), escaped)


def make_docs(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _generation(index_dir: Path) -> Path:
    return index_dir / json.loads((index_dir / "manifest.json").read_text())["generation"]


def _truncate(rel: str) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        path = _generation(index_dir) / rel
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return damage


def _flip_byte(rel: str) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        path = _generation(index_dir) / rel
        data = bytearray(path.read_bytes())
        data[len(data) * 3 // 4] ^= 0xFF
        path.write_bytes(bytes(data))

    return damage


def _malformed_page(rel: str, page: int = 2, page_size: int = 4096) -> Callable[[Path], None]:
    """An SQLite b-tree page whose type byte is garbage: the file opens, a query reading it fails."""

    def damage(index_dir: Path) -> None:
        path = _generation(index_dir) / rel
        data = bytearray(path.read_bytes())
        data[(page - 1) * page_size] = 0x07  # not one of 2, 5, 10, 13
        path.write_bytes(bytes(data))

    return damage


def _manifest(content: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        path = index_dir / "manifest.json"
        path.write_bytes(content(path.read_bytes()) if callable(content) else content)

    return damage


def _edit_manifest(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        path = index_dir / "manifest.json"
        data = json.loads(path.read_text())
        path.write_text(json.dumps(edit(data)))

    return damage


def _remove_generation(index_dir: Path) -> None:
    shutil.rmtree(_generation(index_dir))


def _set(key: str, value: object) -> Callable[[dict], dict]:
    return lambda data: {**data, key: value}


@dataclass(frozen=True)
class Case:
    """`readable`: stats and search must still work (the damage is invisible to them, or absent);
    `recovery`: "rebuild" (`--rebuild` must restore every document), "intact" (nothing was damaged: the
    documents must still be found without a rebuild) or "refused" (a wrong --index: nothing to recover)."""

    name: str
    damage: Callable[[Path], None]
    readable: bool = False
    # the damage is only in what search reads (same sizes): stats still works, search must refuse
    search_only: bool = False
    recovery: str = "rebuild"
    unprivileged: bool = False  # run the commands without root's power to ignore file modes


CASES = [
    Case("manifest truncated", _manifest(lambda b: b[: len(b) // 2])),
    Case("manifest is a JSON list", _manifest(b"[1, 2, 3]")),
    Case("manifest has only format_version", _manifest(b'{"format_version": 2}')),
    Case("manifest is not UTF-8", _manifest(b'{"format_version": \xff\xfe 2}')),
    Case("manifest is empty", _manifest(b"")),
    Case("manifest from format version 1", _edit_manifest(_set("format_version", 1))),
    Case("manifest files is a list", _edit_manifest(_set("files", []))),
    Case("manifest generation escapes the folder", _edit_manifest(_set("generation", "../elsewhere"))),
    Case("manifest size of a file is a string", _edit_manifest(lambda d: {**d, "dim": "384"})),
    Case("generation folder deleted", _remove_generation),
    Case("chunks.sqlite truncated", _truncate("chunks.sqlite")),
    Case("vectors.npy truncated", _truncate("vectors.npy")),
    Case("dense.faiss truncated", _truncate("dense.faiss")),
    Case("bm25 matrix truncated", _truncate("bm25/bm25_matrix.npz")),
    Case("vectors.npy byte flipped (same size)", _flip_byte("vectors.npy"), readable=True),
    Case("chunks.sqlite byte flipped (same size)", _flip_byte("chunks.sqlite"), readable=True),
    Case("chunks.sqlite page malformed", _malformed_page("chunks.sqlite"), search_only=True),
    Case("bm25 vocabulary byte flipped", _flip_byte("bm25/bm25_vocab.json"), search_only=True),
    Case("bm25 matrix byte flipped", _flip_byte("bm25/bm25_matrix.npz"), search_only=True),
    Case("bm25 params byte flipped", _flip_byte("bm25/bm25_params.json"), search_only=True),
]


def _replace_with_file(index_dir: Path) -> None:
    shutil.rmtree(index_dir)
    index_dir.write_text("not an index\n")


def _read_only(index_dir: Path) -> None:
    """The user's own index with write permission removed (as root: handed to nobody first)."""
    for path in [index_dir, *index_dir.rglob("*")]:
        if os.geteuid() == 0:
            os.chown(path, NOBODY, NOBODY)
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _locked(index_dir: Path) -> None:
    index_dir.chmod(0o000)


SPECIAL_CASES = [
    Case("--index names a file", _replace_with_file, recovery="refused"),
    Case("index folder read-only", _read_only, readable=True, recovery="intact", unprivileged=True),
    Case("index folder not readable", _locked, recovery="refused", unprivileged=True),
]


@dataclass
class CaseResult:
    name: str
    runs: list[CliRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    documents_lost: int = 0

    @property
    def tracebacks(self) -> int:
        return sum(r.traceback is not None for r in self.runs)


def _found(index_dir: Path) -> int:
    hits = 0
    for name, word in WORDS.items():
        run = run_cli("search", word, "--index", str(index_dir), "--mode", "bm25", "-k", "1", "--json")
        if run.exit_code == 0 and run.stdout.strip() and json.loads(run.stdout)[0]["source"].endswith(name):
            hits += 1
    return hits


def run_case(case: Case, healthy: Path, docs: Path) -> CaseResult:
    """Damage a copy of `healthy`, run the commands a user would, then the advised recovery."""
    work = Path(tempfile.mkdtemp(prefix="ra-corruption-"))
    try:
        work.chmod(0o755)  # traversable by nobody (see `unprivileged`)
        shutil.copytree(docs, work / "docs")
        shutil.copytree(healthy, work / "index")
        case.damage(work / "index")
        if not case.unprivileged:
            return _run_commands(case, work / "index", work / "docs")
        # Modules load lazily, and the interpreter's own may lie where nobody cannot read (e.g. under
        # /root): load them while still privileged by running the same reads on the healthy index.
        _run_commands(Case("warm-up", lambda _: None, readable=True, recovery="none"), healthy, docs)
        config = os.environ.get("RA_CONFIG")
        os.environ["RA_CONFIG"] = str(work / "none.toml")  # the caller's may lie where nobody cannot look
        try:
            with unprivileged():
                return _run_commands(case, work / "index", work / "docs")
        finally:
            os.environ.pop("RA_CONFIG") if config is None else os.environ.update(RA_CONFIG=config)
    finally:
        remove_tree(work)


def remove_tree(root: Path) -> None:
    """rmtree that first gives back the write and search permissions a case (or test) took away."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
    if root.exists():
        root.chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def _should_read(case: Case, args: list[str]) -> bool:
    return case.readable or (case.search_only and args[0] == "index")


def _run_commands(case: Case, index_dir: Path, docs: Path) -> CaseResult:
    result = CaseResult(case.name)
    idx = ["--index", str(index_dir)]
    reads = [["index", "stats", *idx], ["search", "quokkaword", *idx, "--mode", "bm25"]]
    writes = [["index", "verify", *idx], ["ingest", str(docs), *idx]]
    for args in reads + writes:
        run = run_cli(*args)
        result.runs.append(run)
        if run.traceback is not None:
            result.problems.append(f"{' '.join(args[:2])}: traceback {run.traceback}")
        elif run.exit_code != 0 and not run.one_line_error:
            result.problems.append(f"{' '.join(args[:2])}: error not one line: {run.stderr!r}")
        elif args in reads and _should_read(case, args) and run.exit_code != 0:
            result.problems.append(f"{' '.join(args[:2])}: should still work: {run.stderr.strip()}")
        elif args in reads and not _should_read(case, args) and run.exit_code == 0:
            result.problems.append(f"{' '.join(args[:2])}: served a damaged index")
        elif args[:2] == ["index", "verify"] and case.recovery != "intact" and run.exit_code == 0:
            result.problems.append("verify did not notice the damage")
    if case.recovery == "rebuild":
        run = run_cli("ingest", str(docs), *idx, "--rebuild")
        result.runs.append(run)
        if run.exit_code != 0:
            result.problems.append(f"--rebuild failed: {run.traceback or run.stderr.strip()}")
        result.documents_lost = len(WORDS) - _found(index_dir)
    elif case.recovery == "intact":
        result.documents_lost = len(WORDS) - _found(index_dir)
    if result.documents_lost:
        result.problems.append(f"{result.documents_lost} document(s) not found after recovery")
    return result


def build_healthy(root: Path) -> tuple[Path, Path]:
    """A small healthy index of DOCS (real embeddings) and the folder of its documents."""
    docs = make_docs(root / "docs")
    healthy = root / "healthy"
    run = run_cli("ingest", str(docs), "--index", str(healthy))
    if run.exit_code != 0:
        raise RuntimeError(f"could not build the healthy index: {run.stderr or run.traceback}")
    return healthy, docs


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Root ignores file modes, so as root the read-only case runs with the effective uid of nobody."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
