"""LangChain RAG chain, built the way LangChain's tutorials build one, as a peers-harness worker.

Loaders (PyPDFLoader per page, TextLoader, BSHTMLLoader), RecursiveCharacterTextSplitter(1000, 200) as in
the RAG tutorial, BM25 + FAISS (the same MiniLM, through sentence-transformers) fused by an
EnsembleRetriever (as in our retrieval benchmark), the "citations" how-to's prompt with numbered sources,
and ChatOpenAI on the shared local server. Its "cannot answer" form is the prompt's "I don't know".
Runs in `.venv-peers` (scripts/install-peers.sh).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from protocol import Cited, Reply, Setup, file_label, serve

K = 4  # per retriever, the tutorials' default
PROMPT = (
    "You're a helpful AI assistant. Given a user question and some article snippets, answer the user "
    "question citing the snippets you used by their number, like [1]. If none of the articles answer the "
    "question, just say you don't know.\n\nHere are the articles:\n{context}\n\nQuestion: {question}"
)
ABSTAIN = re.compile(r"\b(?:don'?t|do not) know\b", re.IGNORECASE)
MARKER = re.compile(r"\[(\d+)\]")


class Chain:
    def __init__(self, setup: Setup) -> None:
        from langchain_classic.retrievers import EnsembleRetriever
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
        from langchain_openai import ChatOpenAI
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        pages = [page for path in setup["docs"] for page in _load(Path(path))]
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
        store = FAISS.from_documents(chunks, _minilm(setup["embedding_model"]))
        store.save_local(setup["state_dir"])  # its index on disk, as a user would keep it
        bm25 = BM25Retriever.from_documents(chunks, k=K)
        self.retriever = EnsembleRetriever(retrievers=[bm25, store.as_retriever(search_kwargs={"k": K})])
        self.llm = ChatOpenAI(
            base_url=setup["llm_url"],
            api_key="local",  # type: ignore[arg-type]
            model=setup["llm_model"],
            temperature=0,
            max_tokens=512,  # as PaperQA2's local-model example
            timeout=setup["budget_s"],
            max_retries=0,
        )
        self.chunks = len(chunks)

    def ask(self, question: str) -> Reply:
        docs = self.retriever.invoke(question)
        context = "\n\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(docs, 1))
        answer = str(self.llm.invoke(PROMPT.format(context=context, question=question)).content)
        cited = sorted({int(n) for n in MARKER.findall(answer) if 1 <= int(n) <= len(docs)})
        citations = [_cited(docs[n - 1]) for n in cited]
        return {"answer": answer, "citations": citations, "abstained": bool(ABSTAIN.search(answer))}


def _minilm(path: str) -> Any:
    """LangChain `Embeddings` over sentence-transformers (what langchain-huggingface wraps; its pin on
    huggingface-hub < 2 clashes with the transformers sentence-transformers needs)."""
    from langchain_core.embeddings import Embeddings
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")

    class MiniLM(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return model.encode(texts, normalize_embeddings=True).tolist()

        def embed_query(self, text: str) -> list[float]:
            return model.encode([text], normalize_embeddings=True)[0].tolist()

    return MiniLM()


def _load(path: Path) -> list[Any]:
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader

    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return PyPDFLoader(str(path)).load()
    if suffix in {".html", ".htm"}:
        return BSHTMLLoader(str(path)).load()
    return TextLoader(str(path), encoding="utf-8").load()


def _cited(doc: Any) -> Cited:
    page = doc.metadata.get("page")
    return {
        "document": file_label(doc.metadata["source"]),
        "page": None if page is None else int(page) + 1,  # PyPDFLoader counts from 0
        "quote": doc.page_content,
    }


def build(setup: Setup) -> tuple[Chain, dict[str, Any]]:
    chain = Chain(setup)
    return chain, {"chunk_size": 1000, "chunk_overlap": 200, "k_per_retriever": K, "chunks": chain.chunks}


if __name__ == "__main__":
    serve(build)
