"""The `milvus` backend: chunks, dense vectors and Milvus's own BM25 in one collection, searched by Milvus.

One code path for milvus-lite (`uri` is a `.db` file: tests, one user) and a Milvus standalone or
distributed server (`uri` is `http://host:19530`). Per chunk the collection holds its id, the manifest key
of its file, the file's sha256, its position in the file, its section role (so reference lists can be kept
out of search by a filter), the indexed text (title/section + passage: Milvus
tokenizes it and derives the BM25 sparse vector with its built-in function), the chunk record (JSON) and
the embedding; the document's bibliographic record comes from the manifest, not from Milvus. Full
document texts (for citations and `read_document`) go to a second collection,
`<collection>_docs`, split in pieces under Milvus's VARCHAR limit.

Hybrid search is Milvus's `hybrid_search` with its RRF ranker when the fusion is RRF with equal weights
(the default); other fusion settings fuse the two Milvus rankings client-side exactly as `local` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from index.backends.base import ChunkRef, DocumentChunks, Files, Ranked, chunk_role
from index.config import FusionConfig, MilvusConfig, RetrievalConfig
from index.documents import DocumentMeta
from index.errors import IndexIncompatible, UserFacingError
from index.fusion import fuse
from index.sparse import Tokenizer
from index.types import Chunk

MILVUS_FILE = "milvus.json"
"""In a milvus index's generation directory: where its chunks went and how many were committed."""

TEXT_MAX_BYTES = 65_535  # Milvus VARCHAR limit, in bytes
DOC_PIECE_CHARS = 16_000  # 4 bytes per character at most: a piece always fits
BATCH = 256  # rows per upsert call
QUERY_MAX = 16_384  # Milvus's cap on one query's limit
# The text Milvus analyses is already our tokens (lowercase, stopwords dropped, stemmed): its tokenizer only
# has to split on the spaces. milvus-lite has no `whitespace` tokenizer and its `standard` one ignores every
# filter (docs/benchmarks.md, section 14); both split on what is not a word character, which no token holds
# but the dot of a decimal ("3.5"): `analysed` writes that dot as "_" (never inside a token of ours).
ANALYZER = {"tokenizer": "standard"}


def milvus_record(cfg: MilvusConfig, chunks: int) -> dict[str, Any]:
    """What a generation records of its Milvus collection (the backend and collection are in the build spec)."""
    return {"uri": cfg.uri, "chunks": chunks}


class MilvusUnavailable(UserFacingError):
    """The configured Milvus cannot be reached or refused a request."""


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed RPC with a traceback; our errors already say what failed and what to do."""
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def connect(cfg: MilvusConfig) -> Any:
    """A MilvusClient for `cfg.uri`; fails with the URI and what to start when nothing answers there."""
    from pathlib import Path

    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError:
        raise UserFacingError(
            "index.backend = milvus needs pymilvus: pip install 'research-assistant[milvus]'"
        ) from None

    _quiet_pymilvus()
    uri = cfg.uri
    if not is_server_uri(uri):
        if not uri.endswith(".db"):
            raise UserFacingError(
                f"index.milvus.uri '{uri}' is neither a milvus-lite file (*.db) nor a server URL "
                "(http://host:19530): fix RA_INDEX__MILVUS__URI"
            )
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    try:
        return MilvusClient(uri=uri, token=cfg.token or "", timeout=cfg.timeout_s)
    except MilvusException as exc:
        raise MilvusUnavailable(_unreachable(cfg.uri, exc)) from None


def _unreachable(uri: str, exc: Exception) -> str:
    reason = str(getattr(exc, "message", exc)).splitlines()[0][:200]
    if is_server_uri(uri):
        return (
            f"cannot reach Milvus at {uri} ({reason}): start it (e.g. `bash standalone_embed.sh start` from "
            "the Milvus docs, or docker compose) or point index.milvus.uri at a milvus-lite file such as .ra/milvus.db"
        )
    return f"milvus-lite could not open {uri} ({reason}): check the path is writable and not open in another process"


@contextlib.contextmanager
def _errors(uri: str) -> Iterator[None]:
    """Turn a failed Milvus call into one line naming the URI."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        reason = str(getattr(exc, "message", exc)).splitlines()[0][:200]
        raise MilvusUnavailable(
            f"Milvus at {uri} failed a request ({reason}): check the server is up and its log"
        ) from None


class MilvusBackend:
    """Reads and writes one collection pair; refs are chunk ids."""

    name = "milvus"

    def __init__(
        self,
        cfg: MilvusConfig,
        client: Any | None = None,
        skip_roles: frozenset[str] = frozenset(),
        documents: Mapping[str, DocumentMeta] | None = None,
        retrieval: RetrievalConfig | None = None,
    ) -> None:
        self.cfg = cfg
        # its BM25 and HNSW settings shape the collection (recorded in the build spec); stem, the queries too
        self.retrieval = retrieval or RetrievalConfig()
        self.tokenizer = Tokenizer(self.retrieval.bm25.stem)
        self.skip_roles = skip_roles
        self.documents = documents or {}
        self._filter = f"role not in {lit(sorted(skip_roles))}" if skip_roles else ""
        self.client = client if client is not None else connect(cfg)
        self.collection = cfg.collection
        self.docs = f"{cfg.collection}_docs"
        self._fresh = False  # set by create(): nothing older to delete

    # -- schema ---------------------------------------------------------------------------------------
    def exists(self) -> bool:
        with _errors(self.cfg.uri):
            return bool(self.client.has_collection(self.collection))

    def require(self, dim: int) -> None:
        """Check the collection is there and holds vectors of `dim` (the manifest's), and load it."""
        if not self.exists():
            raise IndexIncompatible(
                f"Milvus collection '{self.collection}' at {self.cfg.uri} is missing: rebuild with "
                "`ra ingest PATH --rebuild`"
            )
        with _errors(self.cfg.uri):
            fields = self.client.describe_collection(self.collection)["fields"]
            for name in (self.collection, self.docs):  # a reopened milvus-lite file starts released
                self.client.load_collection(name)
        have = next((f["params"].get("dim") for f in fields if f["name"] == "dense"), None)
        if have is not None and int(have) != dim:
            raise IndexIncompatible(
                f"Milvus collection '{self.collection}' holds {have}-d vectors, the index expects {dim}-d: "
                "rebuild with `ra ingest PATH --rebuild`"
            )

    def create(self, dim: int) -> None:
        """(Re)create both collections empty: BM25 k1/b and the HNSW graph's shape are fixed at creation."""
        bm25, dense = self.retrieval.bm25, self.retrieval.dense
        from pymilvus import DataType, Function, FunctionType

        with _errors(self.cfg.uri):
            for name in (self.collection, self.docs):
                if self.client.has_collection(name):
                    self.client.drop_collection(name)
            schema = self.client.create_schema(auto_id=False)
            schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=128)
            schema.add_field("file", DataType.VARCHAR, max_length=4096)
            schema.add_field("sha256", DataType.VARCHAR, max_length=64)
            schema.add_field("ord", DataType.INT64)
            schema.add_field("role", DataType.VARCHAR, max_length=64)
            schema.add_field(
                "text",
                DataType.VARCHAR,
                max_length=TEXT_MAX_BYTES,
                enable_analyzer=True,
                analyzer_params=ANALYZER,
            )
            schema.add_field("chunk", DataType.JSON)
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name="bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["text"],
                    output_field_names=["sparse"],
                )
            )
            index = self.client.prepare_index_params()
            hnsw = {"M": dense.hnsw_m, "efConstruction": dense.hnsw_ef_construction}
            index.add_index("dense", index_type="HNSW", metric_type="IP", params=hnsw)
            k1_b = {"bm25_k1": bm25.k1, "bm25_b": bm25.b}
            # a server reads the flat keys; milvus-lite reads only a "params" entry (without it, its own
            # k1 = 1.5, b = 0.75 apply); a server merges that entry too
            index.add_index(
                "sparse",
                index_type="SPARSE_INVERTED_INDEX",
                metric_type="BM25",
                params={**k1_b, "params": k1_b},
            )
            index.add_index("file", index_type="INVERTED")
            index.add_index("role", index_type="INVERTED")
            self.client.create_collection(
                self.collection, schema=schema, index_params=index, consistency_level="Strong"
            )

            docs = self.client.create_schema(auto_id=False)
            docs.add_field("piece_id", DataType.VARCHAR, is_primary=True, max_length=4200)
            docs.add_field("file", DataType.VARCHAR, max_length=4096)
            docs.add_field("sha256", DataType.VARCHAR, max_length=64)
            docs.add_field("part", DataType.INT64)
            docs.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES)
            docs.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector field; unused
            doc_index = self.client.prepare_index_params()
            doc_index.add_index("v", index_type="FLAT", metric_type="L2")
            self.client.create_collection(
                self.docs, schema=docs, index_params=doc_index, consistency_level="Strong"
            )
        self._fresh = True

    # -- writes ---------------------------------------------------------------------------------------
    def replace_documents(self, docs: Sequence[DocumentChunks]) -> None:
        """Upsert the files' new chunks, then drop their chunks of other versions: a reader never sees a file
        missing, and a crash before the manifest commit leaves rows the redo overwrites. A few calls per
        batch of files, not per file: each Milvus call costs a round trip."""
        rows: list[dict[str, Any]] = []
        pieces: list[dict[str, Any]] = []
        for doc in docs:
            vectors = doc.vectors.astype(np.float32).tolist()
            for i, (c, text, vec) in enumerate(zip(doc.chunks, doc.indexed_texts, vectors, strict=True)):
                chunk = {f.name: getattr(c, f.name) for f in dataclasses.fields(c) if f.name != "document"}
                rows.append(
                    {"chunk_id": c.chunk_id, "file": doc.key, "sha256": doc.sha256, "ord": i}
                    | {"role": chunk_role(c), "text": _fit(self.analysed(text)), "chunk": chunk, "dense": vec}
                )
            texts = [doc.text[i : i + DOC_PIECE_CHARS] for i in range(0, len(doc.text), DOC_PIECE_CHARS)]
            for part, piece in enumerate(texts or [""]):
                pieces.append(
                    {
                        "piece_id": f"{doc.sha256}:{part}:{doc.key}"[:4200],
                        "file": doc.key,
                        "sha256": doc.sha256,
                    }
                    | {"part": part, "text": piece, "v": [0.0, 0.0]}
                )
        with _errors(self.cfg.uri):
            for name, batch in ((self.collection, rows), (self.docs, pieces)):
                for lo in range(0, len(batch), BATCH):
                    self.client.upsert(name, batch[lo : lo + BATCH])
            if self._fresh or not docs:
                return  # a collection created by this run holds no other versions
            stale = " or ".join(f"(file == {lit(d.key)} and sha256 != {lit(d.sha256)})" for d in docs)
            self.client.delete(self.collection, filter=stale)
            self.client.delete(self.docs, filter=stale)

    def analysed(self, text: str) -> str:
        """`text` as the words our BM25 indexes, joined by spaces, a decimal's dot as "_" (see ANALYZER):
        Milvus's BM25 function then counts exactly the terms the local backend counts."""
        return " ".join(t.replace(".", "_") for t in self.tokenizer.tokenize(text))

    def flush(self) -> None:
        """Seal what this ingest wrote: until then Milvus searches it as growing, unindexed segments, which
        milvus-lite scans at ~1 s per BM25 query on SciFact (measured: docs/benchmarks.md, section 14)."""
        with _errors(self.cfg.uri):
            for name in (self.collection, self.docs):
                self.client.flush(name)

    def delete_documents(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        with _errors(self.cfg.uri):
            for name in (self.collection, self.docs):
                self.client.delete(name, filter=f"file in {lit(list(keys))}")

    # -- reads ----------------------------------------------------------------------------------------
    def count(self) -> int:
        with _errors(self.cfg.uri):
            res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def _where(self, files: Files) -> str:
        """The role filter, and with `files` only their chunks (Milvus filters before it ranks)."""
        only = f"file in {lit(sorted(files))}" if files is not None else ""
        return " and ".join(f"({c})" for c in (self._filter, only) if c)

    def dense_search(self, vector: np.ndarray, n: int, files: Files = None) -> Ranked:
        with _errors(self.cfg.uri):
            res = self.client.search(
                self.collection,
                data=[np.asarray(vector, dtype=np.float32).tolist()],
                anns_field="dense",
                limit=min(n, QUERY_MAX),
                filter=self._where(files),
                search_params=self._dense_params(n),
            )
        return [(hit.id, float(hit["distance"])) for hit in res[0]]

    def _dense_params(self, n: int) -> dict[str, Any]:
        """HNSW explores `ef` candidates: at 3x the hits asked for, its top 100 on SciFact is the exact
        top 100 that `local`'s flat index returns (at ef = n, 0.5% of them differ: measured on 120 queries)."""
        ef = max(self.retrieval.dense.hnsw_ef_search, 3 * min(n, QUERY_MAX))
        return {"metric_type": "IP", "params": {"ef": ef}}

    def sparse_search(self, query: str, n: int, files: Files = None) -> Ranked:
        terms = self.analysed(query)
        if not terms:
            return []
        with _errors(self.cfg.uri):
            res = self.client.search(
                self.collection,
                data=[terms],
                anns_field="sparse",
                limit=min(n, QUERY_MAX),
                filter=self._where(files),
                search_params={"metric_type": "BM25"},
            )
        # milvus-lite signs BM25 "distances" negative; higher is better either way once the sign is dropped
        return [(hit.id, abs(float(hit["distance"]))) for hit in res[0]]

    def hybrid_search(
        self, query: str, vector: np.ndarray, n: int, fusion: FusionConfig, files: Files = None
    ) -> Ranked:
        depth = min(max(fusion.candidates, n), QUERY_MAX)
        terms = self.analysed(query)
        if fusion.method != "rrf" or fusion.dense_weight != 0.5 or not terms:
            dense, sparse = self.dense_search(vector, depth, files), self.sparse_search(query, depth, files)
            return fuse(dense, sparse, fusion)[:n]  # type: ignore[arg-type]
        where = self._where(files)
        from pymilvus import AnnSearchRequest, RRFRanker

        requests = [
            AnnSearchRequest(
                data=[np.asarray(vector, dtype=np.float32).tolist()],
                anns_field="dense",
                param=self._dense_params(depth),
                limit=depth,
                expr=where or None,
            ),
            AnnSearchRequest(
                data=[terms],
                anns_field="sparse",
                param={"metric_type": "BM25"},
                limit=depth,
                expr=where or None,
            ),
        ]
        with _errors(self.cfg.uri):
            res = self.client.hybrid_search(
                self.collection, requests, ranker=RRFRanker(fusion.rrf_k), limit=n
            )
        # Milvus's RRF is sum 1/(k + rank); ours weights each list by 0.5: same order, scores halved
        return [(hit.id, 0.5 * float(hit["distance"])) for hit in res[0]]

    def fetch(self, refs: Sequence[ChunkRef]) -> dict[ChunkRef, Chunk]:
        if not refs:
            return {}
        rows = self._query(f"chunk_id in {lit(list(refs))}", ["chunk_id", "file", "chunk"], len(refs))
        return {r["chunk_id"]: self._chunk(r) for r in rows}

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        return self.fetch([chunk_id]).get(chunk_id)

    def neighbours(self, chunk_id: str, before: int, after: int) -> list[Chunk]:
        hit = self._query(f"chunk_id == {lit(chunk_id)}", ["file", "ord"], 1)
        if not hit:
            return []
        file, ord_ = hit[0]["file"], int(hit[0]["ord"])
        rows = self._query(
            f"file == {lit(file)} and ord >= {ord_ - before} and ord <= {ord_ + after}",
            ["ord", "file", "chunk"],
            before + after + 1,
        )
        return [self._chunk(r) for r in sorted(rows, key=lambda r: r["ord"])]

    def document_text(self, source: str) -> str | None:
        file = source
        pieces = self._docs_of(file)
        if not pieces:
            hit = self._query(f'chunk["source"] == {lit(source)}', ["file"], 1)
            if not hit:
                return None
            pieces = self._docs_of(hit[0]["file"])
        return "".join(p["text"] for p in sorted(pieces, key=lambda p: p["part"])) if pieces else None

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, grouped by file in document order (for benchmarks and exports)."""
        rows = self._scan(["file", "ord", "chunk"])
        return [self._chunk(r) for r in sorted(rows, key=lambda r: (r["file"], r["ord"]))]

    def versions(self) -> dict[tuple[str, str], int]:
        """How many chunks the collection holds per (file, sha256): what `ra index verify` compares with
        the manifest."""
        held: dict[tuple[str, str], int] = {}
        for r in self._scan(["file", "sha256"]):
            held[(r["file"], r["sha256"])] = held.get((r["file"], r["sha256"]), 0) + 1
        return held

    def _scan(self, fields: list[str]) -> list[dict[str, Any]]:
        with _errors(self.cfg.uri):
            it = self.client.query_iterator(self.collection, batch_size=1000, filter="", output_fields=fields)
            rows: list[dict[str, Any]] = []
            while batch := it.next():
                rows.extend(batch)
            it.close()
        return rows

    def stats(self) -> dict[str, Any]:
        return {"backend": self.name, "milvus_uri": self.cfg.uri, "collection": self.collection}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def _chunk(self, row: dict[str, Any]) -> Chunk:
        return Chunk(**row["chunk"], document=self.documents.get(row["file"]))

    def _docs_of(self, file: str) -> list[dict[str, Any]]:
        with _errors(self.cfg.uri):
            return list(
                self.client.query(
                    self.docs,
                    filter=f"file == {lit(file)}",
                    output_fields=["part", "text"],
                    limit=QUERY_MAX,
                )
            )

    def _query(self, expr: str, fields: list[str], limit: int) -> list[dict[str, Any]]:
        with _errors(self.cfg.uri):
            return list(
                self.client.query(
                    self.collection,
                    filter=expr,
                    output_fields=fields,
                    limit=min(limit, QUERY_MAX),
                )
            )


def collection_problems(cfg: MilvusConfig, files: Mapping[str, Any], dim: int) -> list[str]:
    """What differs between the committed manifest's files ({key: FileEntry}) and the collection: a file
    missing or with another chunk count, or chunks of versions the manifest does not list (left by an
    ingest that stopped between its Milvus writes and its commit: the next ingest of those files redoes it)."""
    store = MilvusBackend(cfg)
    try:
        store.require(dim)
        held = store.versions()
    finally:
        store.close()
    problems = []
    for key, entry in sorted(files.items()):
        n = held.pop((key, entry.sha256), 0)
        if n != entry.chunks:
            problems.append(f"{key} has {n} chunks in Milvus, the manifest says {entry.chunks}")
    problems += [
        f"{key} has {n} chunks of a version the manifest does not list" for (key, _), n in held.items()
    ]
    return problems


def lit(value: str | list) -> str:
    """A Milvus filter literal (a string or a list of strings): JSON quoting is what Milvus parses.

    milvus-lite 3.2 rejects filter templates (`filter_params`), so values are quoted here."""
    return json.dumps(value, ensure_ascii=False)


def _fit(text: str) -> str:
    """Clip to Milvus's VARCHAR byte limit (an 800-character chunk is far below it)."""
    raw = text.encode("utf-8")
    return text if len(raw) <= TEXT_MAX_BYTES else raw[:TEXT_MAX_BYTES].decode("utf-8", "ignore")
