"""The build spec: every setting that shapes what an ingest writes, recorded in the manifest.

Keys are the settings' own dotted names (`retrieval.bm25.k1`), so a mismatch message can name the setting
to change. Query-time settings (k, mode, fusion) are not part of it: they may change freely.

What a difference means depends on the part:
- `index.embedding.*`: the stored vectors come from another model; only `ra ingest --rebuild` re-embeds.
- `index.chunking.*`: the next ingest re-chunks (and re-embeds) every file that still exists.
- `retrieval.bm25.*`, `retrieval.dense.*`: the next ingest rebuilds the BM25 and dense structures
  (`local`; a Milvus collection fixes its BM25 and HNSW shape at creation, so there only `--rebuild`
  applies them).
- `index.backend`, `index.milvus.collection`: where the chunks live; another value is another index.
Opening an index whose embedding, BM25 or dense part differs from the settings is refused, since the
setting would silently do nothing.
"""

from __future__ import annotations

from typing import Any

from index.config import BackendName, ChunkingConfig, EmbeddingConfig, MilvusConfig, RetrievalConfig

# Bump when the BM25 tokenizer (index.sparse.Tokenizer: regex, stopword list, stemmer) changes behaviour.
TOKENISER = "words-nltk127-snowball-english/1"
# Bump when index.sparse's stored weights change (an older index's BM25 is rebuilt by the next ingest).
BM25_SCORING = "okapi-lucene-idf/1"
# Milvus is given our tokens as its text (index.backends.milvus: `analysed`, ANALYZER) and scores them with
# its BM25 function (Lucene idf, as ours); bump when either changes. An index written before (Milvus's own
# analyser on the raw text: "milvus-standard-lowercase-stop_english-stemmer_english/1") is refused.
MILVUS_ANALYSER = "our-tokens-spaced-decimal_dot_as_underscore/milvus-standard/1"
MILVUS_BM25_SCORING = "milvus-bm25-function/1"
EMBEDDING = "index.embedding."
CHUNKING = "index.chunking."
STRUCTURES = ("retrieval.bm25.", "retrieval.dense.")

BuildSpec = dict[str, Any]


def _flat(prefix: str, values: dict[str, Any]) -> BuildSpec:
    return {prefix + key: value for key, value in sorted(values.items())}


def search_spec(
    embedding: EmbeddingConfig,
    retrieval: RetrievalConfig,
    backend: BackendName = "local",
    milvus: MilvusConfig | None = None,
) -> BuildSpec:
    """The part a reader must agree with: where the chunks live, how queries are embedded and tokenised,
        and the saved structures (Milvus's dense index is always HNSW: of `retrieval.dense` it records the graph's
    shape, fixed at creation)."""
    if backend == "milvus":
        where = {"index.backend": backend, "index.milvus.collection": (milvus or MilvusConfig()).collection}
        bm25 = {
            **retrieval.bm25.model_dump(),
            "tokeniser": TOKENISER,
            "analyser": MILVUS_ANALYSER,
            "scoring": MILVUS_BM25_SCORING,
        }
        return {
            **where,
            **_flat(EMBEDDING, embedding.model_dump(include={"model", "backend"})),
            **_flat("retrieval.bm25.", bm25),
            **_flat(
                "retrieval.dense.", retrieval.dense.model_dump(include={"hnsw_m", "hnsw_ef_construction"})
            ),
        }
    return {
        "index.backend": backend,
        **_flat(EMBEDDING, embedding.model_dump(include={"model", "backend"})),
        **_flat(
            "retrieval.bm25.",
            {**retrieval.bm25.model_dump(), "tokeniser": TOKENISER, "scoring": BM25_SCORING},
        ),
        **_flat("retrieval.dense.", retrieval.dense.model_dump()),
    }


def build_spec(
    chunking: ChunkingConfig,
    embedding: EmbeddingConfig,
    retrieval: RetrievalConfig,
    backend: BackendName = "local",
    milvus: MilvusConfig | None = None,
) -> BuildSpec:
    return {**_flat(CHUNKING, chunking.model_dump()), **search_spec(embedding, retrieval, backend, milvus)}


def differences(recorded: BuildSpec, wanted: BuildSpec, prefixes: tuple[str, ...] = ("",)) -> list[str]:
    """`name (index: old, settings: new)` for each setting under `prefixes` whose value differs."""
    return [
        f"{key} (index: {recorded.get(key)!r}, settings: {wanted[key]!r})"
        for key in sorted(wanted)
        if key.startswith(prefixes) and recorded.get(key) != wanted[key]
    ]


def part(recorded: BuildSpec, wanted: BuildSpec, prefixes: tuple[str, ...] | str) -> bool:
    """True when the settings under `prefixes` are the same as when the index was built."""
    return not differences(recorded, wanted, prefixes if isinstance(prefixes, tuple) else (prefixes,))


def check_embedding_spec(recorded: BuildSpec, wanted: BuildSpec, index_dir: object) -> None:
    """Stored vectors from another model (or backend) cannot be mixed with new ones or queried by them,
    and an index kept in one index backend cannot be read or extended through another."""
    from index.errors import IndexIncompatible

    rebuild = f"use another --index, or `ra ingest PATH --rebuild --index {index_dir}`"
    stored = recorded.get("index.backend", "local")  # indexes from before backends are all local
    if stored != wanted["index.backend"]:
        raise IndexIncompatible(
            f"index at {index_dir} is stored in the '{stored}' backend, the settings say "
            f"'{wanted['index.backend']}': set index.backend={stored} (RA_INDEX__BACKEND), {rebuild}"
        )
    collection = differences(recorded, wanted, ("index.milvus.",))
    if collection:
        raise IndexIncompatible(
            f"index at {index_dir} lives in another Milvus collection, {collection[0]}: set it to match "
            f"(RA_INDEX__MILVUS__COLLECTION), {rebuild}"
        )
    vectors = differences(recorded, wanted, (EMBEDDING,))
    if vectors:
        raise IndexIncompatible(
            f"index at {index_dir} was built with other embedding settings, {vectors[0]}: use the settings "
            f"it was built with, another --index, or `ra ingest PATH --rebuild --index {index_dir}`"
        )


def check_search_spec(recorded: BuildSpec, wanted: BuildSpec, index_dir: object) -> None:
    """Refuse to serve an index with settings that would silently not apply, naming the first one."""
    from index.errors import IndexIncompatible

    check_embedding_spec(recorded, wanted, index_dir)
    structures = differences(recorded, wanted, STRUCTURES)
    if structures:
        redo = "--rebuild " if wanted.get("index.backend") == "milvus" else ""
        raise IndexIncompatible(
            f"index at {index_dir} was built with {structures[0]}: run `ra ingest PATH {redo}--index "
            f"{index_dir}` to rebuild it with the current settings, or set the setting back"
        )
