"""The API's query encoder: the configured model exported once to ONNX Runtime, giving the same
vectors (and so the same search results) as sentence-transformers, cached per model, exported once
when several workers start together, and never in the way when anything about it fails."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from music_core import vector_index
from music_core.embed import onnx_export, query_embedder
from music_core.embed.embedder import SentenceEmbedder, describe_model
from music_core.embed.onnx_embedder import OnnxEmbedder, QueryEncoderFiles, WordTable
from music_core.embed.query_embedder import load_query_embedder
from music_core.settings import Settings
from tests.tiny_models import tiny_sentence_transformer

TEXTS = [
    "find the song where they sing whisper in the mirror",
    "WHISPER in the Mirror!!",
    "",
    "   ",
    "naïve café ♪ 東京の夜 — Ünïcödé",
    "'; DROP TABLE music_files; --",
    "la " * 600,  # past the model's 256 tokens: truncated like sentence-transformers does
    "love",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-st")))


def test_packaged_model_gives_the_same_vectors_and_results_as_sentence_transformers(
    model_cache: Path,
) -> None:
    onnx = load_query_embedder(None, model_cache)
    torch_model = SentenceEmbedder(None)
    assert isinstance(onnx, OnnxEmbedder)
    assert (onnx.model_id, onnx.dim) == (torch_model.model_id, torch_model.dim) == (describe_model(None), 384)

    for batch_size in (1, 3, 32):  # padding differs with the batch; vectors must not
        got = onnx.embed(TEXTS, batch_size=batch_size)
        assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
        assert np.abs(got - torch_model.embed(TEXTS)).max() < 1e-4
    assert np.allclose(np.linalg.norm(onnx.embed(TEXTS), axis=1), 1.0, atol=1e-5)
    assert onnx.embed([]).shape == (0, 384)

    corpus = [f"song {i} about {word} and {other}" for i, (word, other) in
              enumerate(zip(["rain", "fire", "mirror", "river", "night"] * 8, ["love", "sea", "road", "sky"] * 10, strict=True))]  # fmt: skip
    vectors = torch_model.embed(corpus)
    index, added, _ = vector_index.update_index(None, 384, np.arange(len(corpus)), lambda ids: vectors[ids])
    assert added == len(corpus)
    queries = ["a mirror song", "rain and love", "the open road at night"]
    _, expected = vector_index.search(index, torch_model.embed(queries), 10)
    _, got_ids = vector_index.search(index, onnx.embed(queries), 10)
    assert got_ids.tolist() == expected.tolist()


def test_a_cached_encoder_is_loaded_without_exporting(
    model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_query_embedder(None, model_cache)  # exported by now (the first test, or here)

    def no_export(*_args: object) -> None:
        raise AssertionError("exported again although the cache holds the encoder")

    monkeypatch.setattr(query_embedder, "run_export", no_export)
    assert isinstance(load_query_embedder(None, model_cache), OnnxEmbedder)


def test_an_export_in_a_new_format_removes_the_older_formats_files(tiny_model: str, tmp_path: Path) -> None:
    files = QueryEncoderFiles.for_model(tmp_path, describe_model(tiny_model))
    base = files.stem.rpartition(".v")[0]
    older = [tmp_path / f"{base}.v1.{suffix}" for suffix in ("onnx", "json", "tokenizer.json", "lock")]
    others = [tmp_path / "another_model.v1.onnx", tmp_path / f"{base}.vintage.onnx"]
    for path in older + others:
        path.write_bytes(b"from an earlier release")
    assert isinstance(load_query_embedder(tiny_model, tmp_path), OnnxEmbedder)
    assert not any(path.exists() for path in older) and all(path.exists() for path in others)
    assert files.manifest.exists() and files.word_table.exists()


def test_workers_starting_together_export_once_and_agree(
    tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports: list[str] = []
    real_export = query_embedder.run_export

    def counted(path: str, model_id: str, files: QueryEncoderFiles) -> None:
        exports.append(model_id)
        real_export(path, model_id, files)

    monkeypatch.setattr(query_embedder, "run_export", counted)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_query_embedder(tiny_model, tmp_path)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert exports == [describe_model(tiny_model)]
    assert all(isinstance(result, OnnxEmbedder) for result in results)
    vectors = [result.embed(TEXTS) for result in results]  # type: ignore[attr-defined]
    expected = SentenceEmbedder(tiny_model).embed(TEXTS)  # no Normalize module, 48 dims, 128 tokens
    assert all(np.abs(v - expected).max() < 1e-4 for v in vectors)


@pytest.mark.parametrize("damaged", ["graph", "word_table"])
def test_a_damaged_cache_entry_is_exported_again(tiny_model: str, tmp_path: Path, damaged: str) -> None:
    first = load_query_embedder(tiny_model, tmp_path)
    assert isinstance(first, OnnxEmbedder)
    before = first.embed(TEXTS)
    files = QueryEncoderFiles.for_model(tmp_path, describe_model(tiny_model))
    path = getattr(files, damaged)
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk

    again = load_query_embedder(tiny_model, tmp_path)
    assert isinstance(again, OnnxEmbedder)
    assert np.abs(again.embed(TEXTS) - before).max() < 1e-6


def test_the_word_table_is_kept_beside_the_graph_not_inside_it(tiny_model: str, tmp_path: Path) -> None:
    import onnx
    from sentence_transformers import SentenceTransformer

    load_query_embedder(tiny_model, tmp_path)
    files = QueryEncoderFiles.for_model(tmp_path, describe_model(tiny_model))
    graph = onnx.load(str(files.graph))
    inputs = [i.name for i in graph.graph.input]
    assert inputs[0] == "inputs_embeds" and sorted(inputs[1:]) == ["attention_mask", "token_type_ids"]
    table = SentenceTransformer(tiny_model, device="cpu")[0].auto_model.get_input_embeddings().weight
    assert all(tuple(t.dims) != tuple(table.shape) for t in graph.graph.initializer)

    words = WordTable(files.word_table)
    assert words.shape == tuple(table.shape)
    ids = np.array([[101, 7, 7, 102], [101, 0, 0, 0]])
    assert np.array_equal(words.rows(ids), table.detach().numpy()[ids])


def test_the_word_table_is_read_only_when_complete_and_in_range(tmp_path: Path) -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "ok.npy", matrix)
    ok = WordTable(tmp_path / "ok.npy")
    assert np.array_equal(ok.rows(np.array([3, 0, 3])), matrix[[3, 0, 3]])
    assert ok.rows(np.zeros((0, 0), dtype=np.int64)).shape == (0, 0, 3)
    for outside in (4, -1):
        with pytest.raises(IndexError, match="outside the 4 rows"):
            ok.rows(np.array([0, outside]))
    for name, content in [
        ("doubles.npy", matrix.astype(np.float64)),
        ("vector.npy", matrix.ravel()),
        ("fortran.npy", np.asfortranarray(matrix)),
    ]:
        np.save(tmp_path / name, content)
        with pytest.raises(ValueError, match="not a C-ordered float32 matrix"):
            WordTable(tmp_path / name)
    whole = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(whole[:-4])
    (tmp_path / "long.npy").write_bytes(whole + b"\0" * 4)
    for name in ("short.npy", "long.npy"):
        with pytest.raises(ValueError, match="truncated or has trailing bytes"):
            WordTable(tmp_path / name)
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(ValueError):
        WordTable(tmp_path / "text.npy")

    (tmp_path / "ok.npy").write_bytes(whole[:-8])  # cut short while in use: a failed query, no crash
    with pytest.raises(ValueError, match="changed while in use"):
        ok.rows(np.array([3]))
    assert np.array_equal(ok.rows(np.array([1])), matrix[[1]])


def test_an_export_that_does_not_reproduce_the_model_is_never_published(
    tiny_model: str, model_cache: Path, tmp_path: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    packaged = load_query_embedder(None, model_cache)
    assert isinstance(packaged, OnnxEmbedder)
    with pytest.raises(onnx_export.ExportMismatchError, match="differs from the model"):
        onnx_export._verify(SentenceTransformer(tiny_model, device="cpu"), packaged)  # 48 vs 384 dims

    other = tiny_sentence_transformer(tmp_path / "other")  # same shape, different random weights
    exported = load_query_embedder(str(other), tmp_path / "cache")
    with pytest.raises(onnx_export.ExportMismatchError):
        onnx_export._verify(SentenceTransformer(tiny_model, device="cpu"), exported)  # type: ignore[arg-type]


def test_when_the_export_fails_queries_use_sentence_transformers(
    tiny_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(*_args: object) -> None:
        raise onnx_export.ExportMismatchError(
            "exported encoder differs from the model by 3.0e-01\nsecond line"
        )

    monkeypatch.setattr(query_embedder, "run_export", failing)
    with caplog.at_level(logging.WARNING, logger=query_embedder.__name__):
        embedder = load_query_embedder(tiny_model, tmp_path)
    assert isinstance(embedder, SentenceEmbedder)
    assert embedder.embed(["still searchable"]).shape == (1, 48)
    assert "ONNX query encoder unavailable (ExportMismatchError: exported encoder differs" in caplog.text
    assert "second line" not in caplog.text
    assert not QueryEncoderFiles.for_model(tmp_path, describe_model(tiny_model)).manifest.exists()


def test_settings_choose_the_encoder_and_its_cache(tmp_path: Path) -> None:
    default = Settings(_env_file=None, data_dir=tmp_path, model_cache_dir=None)  # type: ignore[call-arg]
    assert default.query_encoder_cache == tmp_path.resolve() / "models"
    moved = Settings(_env_file=None, model_cache_dir=tmp_path / "m")  # type: ignore[call-arg]
    assert moved.query_encoder_cache == (tmp_path / "m").resolve()
    torch_only = Settings(_env_file=None, query_encoder="torch")  # type: ignore[call-arg]
    assert torch_only.query_encoder_cache is None
    assert isinstance(load_query_embedder(None, torch_only.query_encoder_cache), SentenceEmbedder)
    with pytest.raises(ValueError, match="query_encoder"):
        Settings(_env_file=None, query_encoder="tensorflow")  # type: ignore[call-arg]


def test_the_api_process_never_imports_torch_even_when_it_exports(tiny_model: str, tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; import music_api.main; "
        "from music_core.embed.query_embedder import load_query_embedder; "
        f"e = load_query_embedder({tiny_model!r}, Path({str(tmp_path)!r})); v = e.embed(['a query']); "
        "print(type(e).__name__, v.shape[1], 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split() == ["OnnxEmbedder", "48", "False"]  # exported in a child process
    assert QueryEncoderFiles.for_model(tmp_path, describe_model(tiny_model)).manifest.exists()


def test_a_failed_export_reports_its_reason_in_one_line(tmp_path: Path) -> None:
    files = QueryEncoderFiles.for_model(tmp_path, "missing@1")
    with pytest.raises(RuntimeError) as failure:
        query_embedder.run_export(str(tmp_path / "no such model"), "missing@1", files)
    assert "\n" not in str(failure.value) and "no such model" in str(failure.value)
    assert not files.manifest.exists() and not list(tmp_path.glob("*.onnx"))
