"""Model files: round trip, and every kind of file load_model must refuse before building anything."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
import skops.io as sio
from sklearn.pipeline import Pipeline

from xl_expense.core.classify import train_classifier
from xl_expense.errors import OutputError, XlExpenseError
from xl_expense.io import model_store
from xl_expense.io.model_store import (
    META_MEMBER,
    PAYLOAD_MEMBER,
    ModelFileError,
    ModelStale,
    load_model,
    model_path_for,
    save_model,
)

FIX = "delete it or re-run with --retrain to train a new model"


def _ledger() -> pd.DataFrame:
    rows = [("出租车 taxi to client", "滴滴出行", 35.0, "差旅费"), ("Hotel 住宿 2 nights", "Hilton", 820.0, "差旅费"),
            ("客户晚宴 dinner", "全聚德", 1500.0, "客户招待"), ("招待客户 lunch", "海底捞", 600.0, "客户招待"),
            ("手机话费 phone bill", "中国移动", 199.0, "通讯费"), ("data plan 流量", "China Mobile", 99.0, "通讯费")]
    frame = pd.DataFrame(rows * 3, columns=["description", "vendor", "amount", "category"])
    frame["customer"] = None
    return frame


@pytest.fixture(scope="module")
def model() -> Pipeline:
    return train_classifier(_ledger(), cv=False).model


@pytest.fixture
def saved(tmp_path: Path, model: Pipeline) -> Path:
    return save_model(model, tmp_path / "台账.xe-model", {"labels_sha256": "abc", "classes": ["差旅费", "客户招待"],
                                                         "labelled_rows": 18})


# ------------------------------------------------------------------ helpers that forge files

def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_members(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _rewrite(path: Path, *, meta_changes: dict | None = None, payload: bytes | None = None,
             resign: bool = True) -> None:
    """Rewrite a model file: change metadata values and/or the payload, re-signing the checksum
    when ``resign`` so that only the check under test can catch the change."""
    members = _members(path)
    meta = json.loads(members[META_MEMBER])
    if payload is not None:
        members[PAYLOAD_MEMBER] = payload
        if resign:
            meta["payload_sha256"] = hashlib.sha256(payload).hexdigest()
            meta["payload_bytes"] = len(payload)
    meta.update(meta_changes or {})
    members[META_MEMBER] = json.dumps(meta).encode("utf-8")
    _write_members(path, members)


def _payload_with_schema(path: Path, edit) -> bytes:
    """The file's skops payload with its schema.json passed through ``edit`` (a crafted payload)."""
    payload = _members(path)[PAYLOAD_MEMBER]
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(parts["schema.json"])
    edit(schema)
    parts["schema.json"] = json.dumps(schema).encode("utf-8")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


class Planted:
    """A class of the test module: not on the allowlist, so a model holding one is refused."""

    built = 0

    def __init__(self) -> None:
        Planted.built += 1

    def __setstate__(self, state) -> None:
        Planted.built += 1
        self.__dict__.update(state)


def _refusal(path: Path, **kwargs) -> ModelFileError:
    with pytest.raises(ModelFileError) as info:
        load_model(path, **kwargs)
    error = info.value
    assert error.path == str(path)
    assert error.fix == FIX or error.what == "model file not found"
    return error


# ------------------------------------------------------------------ round trip

def test_round_trip_predicts_the_same(saved: Path, model: Pipeline) -> None:
    loaded, meta = load_model(saved)
    ledger = _ledger()
    assert list(loaded.predict(ledger)) == list(model.predict(ledger))
    np.testing.assert_array_equal(loaded.predict_proba(ledger), model.predict_proba(ledger))
    assert meta["labels_sha256"] == "abc" and meta["labelled_rows"] == 18
    assert meta["classes"] == ["差旅费", "客户招待"]
    assert meta["format"] == "xl-expense-model" and meta["format_version"] == 1
    assert set(meta["versions"]) == {"xl_expense", "sklearn", "numpy", "scipy", "skops", "python"}
    assert meta["versions"]["sklearn"] == sklearn.__version__
    assert meta["payload_sha256"] == hashlib.sha256(_members(saved)[PAYLOAD_MEMBER]).hexdigest()


def test_file_is_a_two_member_zip_with_readable_metadata(saved: Path) -> None:
    assert list(_members(saved)) == [META_MEMBER, PAYLOAD_MEMBER]  # metadata first: cheap to read
    text = _members(saved)[META_MEMBER].decode("utf-8")
    assert '"差旅费"' in text  # category names stay readable in the metadata


def test_model_path_for_is_beside_the_workbook(tmp_path: Path) -> None:
    assert model_path_for(tmp_path / "费用台账.xlsx") == tmp_path / "费用台账.xe-model"
    assert model_path_for("ledger.v2.csv") == Path("ledger.v2.xe-model")


def test_save_replaces_atomically_and_leaves_no_temporary(saved: Path, model: Pipeline) -> None:
    save_model(model, saved, {"labels_sha256": "new"})
    assert load_model(saved)[1]["labels_sha256"] == "new"
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_failed_save_keeps_the_previous_model(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_store.os, "replace", boom)
    with pytest.raises(OutputError, match="cannot write the model file \\(No space left on device\\)"):
        save_model(load_model(saved)[0], saved, {"labels_sha256": "other"})
    assert load_model(saved)[1]["labels_sha256"] == "abc"
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_save_refuses_reserved_keys_and_other_objects(tmp_path: Path, model: Pipeline) -> None:
    with pytest.raises(ValueError, match="meta may not set payload_sha256"):
        save_model(model, tmp_path / "m.xe-model", {"payload_sha256": "x"})
    with pytest.raises(TypeError, match="not dict"):
        save_model({"a": 1}, tmp_path / "m.xe-model", {})
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ stale is not an error

def test_expect_mismatch_raises_model_stale(saved: Path) -> None:
    with pytest.raises(ModelStale) as info:
        load_model(saved, expect={"labels_sha256": "changed", "labelled_rows": 18})
    assert info.value.differences == {"labels_sha256": ("abc", "changed")}
    assert not isinstance(info.value, ModelFileError)
    assert str(info.value) == (f"{saved}: the stored model was trained on other data (labels_sha256 changed) — "
                               "it is retrained automatically; re-run with --retrain to force it")


def test_expect_match_loads_and_compares_after_json(saved: Path) -> None:
    model, meta = load_model(saved, expect={"labels_sha256": "abc", "classes": ("差旅费", "客户招待")})
    assert meta["classes"] == ["差旅费", "客户招待"]
    assert isinstance(model, Pipeline)


# ------------------------------------------------------------------ refusals

def test_missing_file(tmp_path: Path) -> None:
    error = _refusal(tmp_path / "none.xe-model")
    assert error.what == "model file not found"


@pytest.mark.parametrize("content, fragment", [
    (b"", "not an xl-expense model file (not a complete zip archive"),
    (bytes(range(256)) * 40, "not an xl-expense model file (not a complete zip archive"),
    (b"\x80\x04\x95pickle", "not an xl-expense model file (not a complete zip archive"),
])
def test_random_bytes_are_not_a_model(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "x.xe-model"
    path.write_bytes(content)
    assert _refusal(path).what.startswith(fragment)


def test_foreign_zip_is_not_a_model(tmp_path: Path, model: Pipeline) -> None:
    path = tmp_path / "x.xe-model"
    sio.dump(model, path)  # a bare skops file: no metadata of ours
    error = _refusal(path)
    assert error.what == f"not an xl-expense model file (a zip archive without our {META_MEMBER} and {PAYLOAD_MEMBER})"
    assert error.reason == "not_a_model"


def test_zip_with_our_names_but_foreign_metadata(saved: Path) -> None:
    members = _members(saved)
    members[META_MEMBER] = b'{"format": "something-else"}'
    _write_members(saved, members)
    assert _refusal(saved).what == f"not an xl-expense model file ({META_MEMBER} is not our metadata)"


def test_truncated_file(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    error = _refusal(saved)
    assert error.what.startswith("not an xl-expense model file (not a complete zip archive")


def test_flipped_byte_in_the_payload_is_damage(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    at = data.index(b"schema.json") + 200  # inside the payload member's data
    data[at] ^= 0xFF
    saved.write_bytes(bytes(data))
    error = _refusal(saved)
    assert error.what == f"the model file is damaged ({PAYLOAD_MEMBER}: Bad CRC-32 for file '{PAYLOAD_MEMBER}')"
    assert error.reason == "damaged"


def test_tampered_payload_fails_the_checksum(saved: Path, model: Pipeline) -> None:
    other = sio.dumps(model)  # a valid payload, but not the one the metadata vouches for
    _rewrite(saved, payload=other, resign=False)
    error = _refusal(saved)
    assert error.what == "the model file was modified after it was saved (checksum mismatch)"
    assert error.reason == "tampered"


def test_sklearn_version_mismatch(saved: Path) -> None:
    meta = json.loads(_members(saved)[META_MEMBER])
    meta["versions"]["sklearn"] = "1.2.2"
    _rewrite(saved, meta_changes={"versions": meta["versions"]})
    error = _refusal(saved)
    assert error.what == (f"the model was saved with scikit-learn 1.2.2 and this is scikit-learn "
                          f"{sklearn.__version__}; a model from another version can mispredict")
    assert error.reason == "version"


def test_sklearn_patch_release_is_accepted(saved: Path) -> None:
    meta = json.loads(_members(saved)[META_MEMBER])
    major, minor = sklearn.__version__.split(".")[:2]
    meta["versions"]["sklearn"] = f"{major}.{minor}.99"
    _rewrite(saved, meta_changes={"versions": meta["versions"]})
    assert isinstance(load_model(saved)[0], Pipeline)


def test_format_version_mismatch(saved: Path) -> None:
    _rewrite(saved, meta_changes={"format_version": 2})
    error = _refusal(saved)
    assert error.what == "the model file has format version 2; this xl-expense reads version 1"
    assert error.reason == "version"


def test_untrusted_class_is_refused_before_it_is_built(tmp_path: Path, model: Pipeline) -> None:
    """A payload holding an object of a class defined here: refused, and never instantiated."""
    path = tmp_path / "m.xe-model"
    save_model(model, path, {})
    planted = Planted()
    planted.note = "x"
    inner = sio.dumps({"model": model, "planted": planted})
    _rewrite(path, payload=inner)  # re-signed: only the type check can catch it
    Planted.built = 0
    error = _refusal(path)
    assert error.what == (f"the model file contains types that are not allowed ({__name__}.Planted); only "
                          "scikit-learn, NumPy, SciPy and xl-expense types are loaded, so it was not opened")
    assert error.reason == "untrusted"
    assert Planted.built == 0


def test_untrusted_container_type_is_refused(tmp_path: Path, model: Pipeline) -> None:
    path = tmp_path / "m.xe-model"
    save_model(model, path, {})
    _rewrite(path, payload=sio.dumps(collections.OrderedDict(model=model)))
    assert "(collections.OrderedDict)" in _refusal(path).what


@pytest.mark.parametrize("module, name, loader", [
    ("builtins", "eval", "FunctionNode"),
    ("os", "system", "FunctionNode"),
    ("subprocess", "Popen", "ObjectNode"),
    ("numpy", "fromfile", "FunctionNode"),       # functions only from xl_expense.core
    ("builtins", "getattr", "TypeNode"),
    ("sklearn.pipeline", "Pipeline", "MethodNode"),
])
def test_crafted_schema_naming_a_dangerous_callable_is_refused(saved: Path, module: str, name: str,
                                                               loader: str) -> None:
    """Swap the vectoriser's analyzer (a function node) for something dangerous, re-sign the file."""
    def edit(schema: dict) -> None:
        stack = [schema]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if node.get("__loader__") == "FunctionNode":
                    node.update({"__module__": module, "__class__": name, "__loader__": loader})
                    return
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        raise AssertionError("the pipeline has no function node to replace")

    _rewrite(saved, payload=_payload_with_schema(saved, edit))
    error = _refusal(saved)
    assert error.what.startswith(f"the model file contains types that are not allowed ({module}.{name})")


def test_allowlist_rules() -> None:
    allowed = model_store.is_allowed
    assert allowed("sklearn.pipeline", "Pipeline") and allowed("numpy", "ndarray")
    assert allowed("scipy.sparse._csr", "csr_matrix") and allowed("builtins", "dict")
    assert allowed("xl_expense.core.classify", "_whole_text", "FunctionNode")
    assert not allowed("numpyx", "thing") and not allowed("sklearnx.a", "B")
    assert not allowed("builtins", "eval") and not allowed("builtins", "__import__")
    assert not allowed("xl_expense.io.model_store", "save_model", "FunctionNode")
    assert not allowed("numpy", "load", "FunctionNode")


def test_payload_that_is_not_a_pipeline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.xe-model"
    save_model(train_classifier(_ledger(), cv=False).model, path, {})
    _rewrite(path, payload=sio.dumps({"weights": np.arange(3)}))
    assert _refusal(path).what == "the model file holds a dict, not a classification pipeline"


def test_zip_bomb_member_is_refused_from_the_directory(tmp_path: Path) -> None:
    """A 64 MB member of zeros compresses ~1000×: refused without decompressing it."""
    path = tmp_path / "bomb.xe-model"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(META_MEMBER, json.dumps({"format": "xl-expense-model"}))
        archive.writestr(PAYLOAD_MEMBER, b"\0" * (64 * 1024**2))
    error = _refusal(path)
    assert error.what.startswith(f"part {PAYLOAD_MEMBER} of the model file expands ")
    assert error.what.endswith("(limit 200×); it looks like a zip bomb and was not opened")
    assert error.reason == "too_large"


def test_zip_bomb_inside_the_payload_is_refused(saved: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (32 * 1024**2))
    _rewrite(saved, payload=inner.getvalue())
    error = _refusal(saved)
    assert error.what.startswith("part schema.json of the model payload expands ")


def test_oversized_file_is_refused_before_reading(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_store, "MAX_MODEL_BYTES", 1000)
    error = _refusal(saved)
    assert error.what.endswith("(limit 0 GiB); it was not opened") and error.reason == "too_large"


def test_deeply_nested_schema_is_damage_not_a_crash(saved: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("schema.json", "[" * 100_000 + "]" * 100_000)
    _rewrite(saved, payload=inner.getvalue())
    assert _refusal(saved).what == "the model file is damaged (schema.json: RecursionError)"


def test_errors_are_user_errors_with_one_line(saved: Path) -> None:
    _rewrite(saved, meta_changes={"format_version": 0})
    with pytest.raises(XlExpenseError) as info:
        load_model(saved)
    assert str(info.value) == (f"{saved}: the model file has format version 0; this xl-expense reads version 1"
                               f" — {FIX}")


def test_vocabularies_are_stored_compactly_and_the_model_is_left_as_it_was(saved: Path, model: Pipeline) -> None:
    """A vocabulary is stored as one array of terms (not a JSON node or .npy per n-gram)."""
    with zipfile.ZipFile(io.BytesIO(_members(saved)[PAYLOAD_MEMBER])) as payload:
        assert len(payload.namelist()) < 20
        assert '"vocabulary_"' in payload.read("schema.json").decode()
        assert '"滴滴出行"' not in payload.read("schema.json").decode()  # the whole-vendor term is in a .npy
    vectoriser = model.named_steps["features"].named_transformers_["vendor_name"]
    assert isinstance(vectoriser.vocabulary_, dict)  # the fitted model got its dict back after the dump
    loaded = load_model(saved)[0].named_steps["features"].named_transformers_["vendor_name"]
    assert loaded.vocabulary_ == vectoriser.vocabulary_
    assert "滴滴出行" in loaded.vocabulary_


def test_terms_array_falls_back_to_ints_when_not_exact() -> None:
    terms = model_store._terms_array({"b": np.int64(1), "a": np.int64(0)})
    assert isinstance(terms, np.ndarray) and terms.tolist() == ["a", "b"]
    assert model_store._terms_array({"a": np.int64(0), "c": np.int64(2)}) == {"a": 0, "c": 2}  # a gap
    assert model_store._terms_array({"a\0": np.int64(0)}) == {"a\0": 0}  # NumPy strings drop a trailing NUL


def test_failed_dump_leaves_the_fitted_model_intact(tmp_path: Path, model: Pipeline,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("dump failed")

    monkeypatch.setattr(model_store.sio, "dumps", broken)
    with pytest.raises(RuntimeError, match="dump failed"):
        save_model(model, tmp_path / "m.xe-model", {})
    # The whole-vendor-name vectoriser keeps a dict vocabulary (the n-gram ones hash their terms).
    vectoriser = model.named_steps["features"].named_transformers_["vendor_name"]
    assert isinstance(vectoriser.vocabulary_, dict) and not list(tmp_path.iterdir())
