"""Store the fitted classifier next to the workbook, and refuse any model file we cannot trust.

A model file arrives the way ledgers do — copied between colleagues, synced through shared
folders — so loading one must never run code from it. ``pickle``/``joblib`` files can run
arbitrary code on load; this module uses `skops <https://skops.readthedocs.io>`_, which
rebuilds objects from a JSON description of their state and only instantiates the types
it is told to trust. On top of skops' own audit we read that JSON description ourselves and
refuse the file *before skops touches it* unless every type in it is on
:data:`ALLOWED_PREFIXES` (scikit-learn, NumPy, SciPy, ``xl_expense.core``) or is a plain
builtin container/value; functions are accepted only from ``xl_expense.core`` (a function
stored as, say, a vectoriser's ``analyzer`` is later called on ledger text, and NumPy has
functions that read and write files).

File layout (``<stem>.xe-model``, a zip archive, written uncompressed)::

    xl-expense-model.json   metadata: ours (format, versions, payload checksum) + the caller's
    model.skops             the skops payload (itself a zip, stored uncompressed)

Checks made by :func:`load_model`, in this order, each with one message and a fix:

1. the file is a zip with exactly those two members, within the size and compression-ratio
   limits of :mod:`xl_expense.io.safety` (a zip bomb is refused from its directory alone);
2. the metadata is ours and of :data:`FORMAT_VERSION`;
3. ``expect`` (e.g. the hash of the training labels) — a mismatch raises :class:`ModelStale`,
   which is *not* an error: the labels changed, so the caller retrains;
4. the scikit-learn major.minor version that saved the model is the running one (a model
   from another version can load and then mispredict silently);
5. the payload's SHA-256 matches the metadata (damage, or an edit by hand);
6. the payload's own zip is within the limits, and every type it names is allowed;
7. skops rebuilds it, trusting exactly those (already checked) types, into a ``Pipeline``.

The checksum is an integrity check, not a signature: someone who rewrites the payload on
purpose can recompute it. What stops a malicious file is step 6 — nothing outside the
allowlist is ever imported or instantiated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import platform
import tempfile
import zipfile
from collections.abc import Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
import skops
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from skops.io.exceptions import UntrustedTypesFoundException

from xl_expense.errors import OutputError, XlExpenseError
from xl_expense.io.safety import (
    MAX_COMPRESSION_RATIO,
    MAX_MEMBERS,
    MAX_UNCOMPRESSED_BYTES,
    RATIO_CHECK_MIN_BYTES,
)

#: Suffix of the model file written beside a workbook: ``费用台账.xlsx`` → ``费用台账.xe-model``.
MODEL_SUFFIX = ".xe-model"
#: Marker in the metadata: a zip that lacks it is somebody else's file.
FORMAT_NAME = "xl-expense-model"
#: Bumped whenever the layout or the meaning of the metadata changes; other versions are refused.
FORMAT_VERSION = 1
META_MEMBER = "xl-expense-model.json"
PAYLOAD_MEMBER = "model.skops"
#: Metadata larger than this is not ours (ours is a few kilobytes, even with 400 class names).
MAX_META_BYTES = 1024**2
#: The whole model file, and everything it expands to, stays below the workbook limit.
MAX_MODEL_BYTES = MAX_UNCOMPRESSED_BYTES
#: The payload is not compressed: the coefficients (classes × n-grams float64) are most of it
#: and deflate poorly — on a 100k-row Toronto model 324 MB → 257 MB for 22 s more per save.
PAYLOAD_COMPRESSION = zipfile.ZIP_STORED
#: Keys this module writes into the metadata; the caller's ``meta`` may not use them.
RESERVED_KEYS = ("format", "format_version", "versions", "payload_sha256", "payload_bytes", "saved_at")

#: Module prefixes whose classes (and dtypes) a model may contain.
ALLOWED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "xl_expense.core.")
#: Modules allowed by exact name (``numpy.ndarray`` is stored with module ``numpy``).
ALLOWED_MODULES = ("numpy",)
#: Only these modules may provide *functions* (see the module docstring).
FUNCTION_PREFIXES = ("xl_expense.core.",)
#: Builtin types a model's state is made of; ``builtins.eval``, ``getattr``, ``open``… are not.
ALLOWED_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool",
                              "complex", "bytes", "bytearray", "slice", "NoneType"})
#: skops node kinds that rebuild a callable rather than data or an object.
_CALLABLE_LOADERS = frozenset({"FunctionNode", "MethodNode", "PartialNode", "OperatorFuncNode"})

_FIX = "delete it or re-run with --retrain to train a new model"


class ModelFileError(XlExpenseError):
    """A stored model file was refused: not a model, damaged, tampered, unsafe or from another version.

    ``reason`` says which, for callers that react differently: ``not_a_model``, ``too_large``,
    ``damaged``, ``tampered``, ``untrusted``, ``version``.
    """

    def __init__(self, what: str, fix: str = _FIX, path: str | None = None, *, reason: str = "not_a_model"):
        self.reason = reason
        super().__init__(what, fix, path)


class ModelStale(XlExpenseError):
    """The stored model is sound but was trained on other labels than ``expect`` asks for.

    Not an error to show the user: the caller catches it and retrains. It is raised after
    the file's structure, metadata and format version were checked and before the payload
    is read, so nothing of a stale model is built. ``differences`` maps each key of
    ``expect`` that differs to ``(stored, expected)``.
    """

    def __init__(self, differences: Mapping[str, tuple[Any, Any]], path: str | None = None):
        self.differences = dict(differences)
        keys = ", ".join(self.differences)
        super().__init__(f"the stored model was trained on other data ({keys} changed)",
                         "it is retrained automatically; re-run with --retrain to force it", path)


# ------------------------------------------------------------------------------ paths

def model_path_for(workbook_path: str | os.PathLike) -> Path:
    """Where the model of ``workbook_path`` lives: ``<folder>/<stem>.xe-model``.

    Beside the workbook, visible (not a dot-file: the fix for a refused model is "delete
    it", so users must be able to find it), and named after the workbook's stem so that
    ``台账.xlsx`` and its CSV export ``台账.csv`` share one model — the labels hash decides
    whether it still fits.
    """
    path = Path(workbook_path)
    return path.with_name(path.stem + MODEL_SUFFIX)


# ------------------------------------------------------------------------------ saving

def save_model(model: Pipeline, path: str | os.PathLike, meta: Mapping[str, Any]) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically and return the path.

    ``meta`` is the caller's JSON-able description of the training (labels hash, classes,
    row counts…), stored as is; this function adds :data:`RESERVED_KEYS` (format version,
    library versions, the payload's SHA-256, the time). The file is written to a temporary
    file in the same folder and moved over ``path`` with :func:`os.replace`, so a crash or a
    full disk leaves the previous model intact, never half a file.

    Raises ``TypeError``/``ValueError`` for a non-Pipeline model, a reserved key or
    non-JSON-able meta (programming errors), :class:`~xl_expense.errors.OutputError` when the
    file cannot be written.
    """
    if not isinstance(model, Pipeline):
        raise TypeError(f"save_model stores a scikit-learn Pipeline, not {type(model).__name__}")
    clash = sorted(set(meta) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"meta may not set {', '.join(clash)}: save_model writes them")
    path = Path(path)
    with _compact_vocabularies(model):
        payload = sio.dumps(model, compression=PAYLOAD_COMPRESSION)
    stored = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": library_versions(),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_bytes": len(payload),
        "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **meta,
    }
    meta_bytes = json.dumps(stored, ensure_ascii=False, indent=1).encode("utf-8")  # TypeError if not JSON-able
    _write_atomically(path, meta_bytes, payload)
    return path


@contextmanager
def _compact_vocabularies(model: Pipeline):
    """While dumping, store each text vectoriser's ``vocabulary_`` as an array of its terms.

    ``vocabulary_`` maps every n-gram to its column, 100,000 of them for a 100k-row ledger.
    skops writes a dict as one JSON node per key and value (90 MB of schema.json, rebuilt
    node by node on load) and scikit-learn's NumPy-integer values as one ``.npy`` member
    each, checking the archive's name list every time (hours). The terms in column order, as
    one NumPy string array, are the same information in one ``.npy``:
    :func:`_expand_vocabularies` turns them back into the dict after loading (measured on
    100k Toronto rows: dump 33 s → 18 s, load 20 s → 8 s). A vocabulary this encoding cannot
    hold exactly (columns not 0…n-1, a term with a trailing NUL, which NumPy strings drop)
    is stored with plain ``int`` values instead. The fitted model is restored afterwards,
    also when the dump fails.
    """
    swapped = []
    try:
        for step in _estimators(model):
            vocabulary = getattr(step, "vocabulary_", None)
            if isinstance(vocabulary, dict) and vocabulary:
                swapped.append((step, vocabulary))
                step.vocabulary_ = _terms_array(vocabulary)
        yield
    finally:
        for step, vocabulary in swapped:
            step.vocabulary_ = vocabulary


def _terms_array(vocabulary: dict) -> np.ndarray | dict:
    """The terms of ``vocabulary`` ordered by column, or the dict with plain ints when not exact."""
    terms = [""] * len(vocabulary)
    exact = True
    for term, column in vocabulary.items():
        if not (0 <= column < len(terms)) or terms[column] or not isinstance(term, str) or not term:
            exact = False
            break
        terms[column] = term
    array = np.array(terms, dtype=str) if exact else None
    if array is None or array.tolist() != terms:
        return {term: int(column) for term, column in vocabulary.items()}
    return array


def _expand_vocabularies(model: Pipeline) -> None:
    """Undo :func:`_compact_vocabularies` on a loaded model: terms array → ``{term: column}``."""
    for step in _estimators(model):
        terms = getattr(step, "vocabulary_", None)
        if isinstance(terms, np.ndarray):
            step.vocabulary_ = {term: column for column, term in enumerate(terms.tolist())}


def _estimators(estimator: Any):
    """``estimator`` and every estimator nested in it (pipeline steps, column transformers, unions)."""
    yield estimator
    children: list[Any] = []
    if isinstance(estimator, Pipeline):
        children = [step for _, step in estimator.steps]
    elif hasattr(estimator, "transformers_"):
        children = [transformer for _, transformer, _ in estimator.transformers_]
    elif hasattr(estimator, "transformer_list"):
        children = [transformer for _, transformer in estimator.transformer_list]
    for child in children:
        if isinstance(child, BaseEstimator):
            yield from _estimators(child)


def library_versions() -> dict[str, str]:
    """Versions of everything that shapes the stored model, for the metadata and the report."""
    return {"xl_expense": _version_of("xl-expense"), "sklearn": sklearn.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "skops": skops.__version__, "python": platform.python_version()}


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def _write_atomically(path: Path, meta_bytes: bytes, payload: bytes) -> None:
    """Zip the two members into a temporary file beside ``path``, then replace ``path`` with it."""
    temporary: Path | None = None
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        temporary = Path(name)
        with os.fdopen(descriptor, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
                # A fixed timestamp: the file's bytes depend only on what it stores.
                for member, data in ((META_MEMBER, meta_bytes), (PAYLOAD_MEMBER, payload)):
                    archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write the model file ({exc.strerror or exc})",
                          "check that the folder exists and is writable, and that the file is not open elsewhere",
                          str(path)) from None
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------ loading

def load_model(path: str | os.PathLike, *, expect: Mapping[str, Any] | None = None) -> tuple[Pipeline, dict]:
    """Load a model written by :func:`save_model`, after the checks of the module docstring.

    Parameters
    ----------
    path : path of the ``.xe-model`` file
    expect : mapping, optional
        Metadata values the caller requires, e.g. ``{"labels_sha256": h}``. Compared after a
        JSON round trip (tuples equal lists).

    Returns
    -------
    (Pipeline, dict)
        The model and the stored metadata (the caller's keys and :data:`RESERVED_KEYS`).

    Raises
    ------
    ModelStale
        A key of ``expect`` differs: the labels changed, retrain (not an error).
    ModelFileError
        Anything else wrong with the file; the message says what and how to fix it.
    """
    path = Path(path)
    try:
        return _load(path, expect)
    except (ModelFileError, ModelStale) as exc:
        raise exc.with_path(str(path))


def _load(path: Path, expect: Mapping[str, Any] | None) -> tuple[Pipeline, dict]:
    meta_bytes, payload_reader = _open_container(path)
    meta = _parse_meta(meta_bytes)
    _check_format(meta)
    _check_expected(meta, expect)
    _check_sklearn_version(meta)
    payload = payload_reader()
    _check_checksum(meta, payload)
    schema = _read_schema(payload)
    trusted = _check_types(schema)
    model = _rebuild(payload, trusted)
    return model, meta


def _open_container(path: Path) -> tuple[bytes, Any]:
    """Metadata bytes and a function reading the payload, after the container checks."""
    try:
        size = path.stat().st_size
        data = None if size > MAX_MODEL_BYTES else path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError("model file not found", "re-run with --retrain to train a new model") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file ({exc.strerror or exc})", _FIX, reason="damaged") from None
    if data is None:
        raise ModelFileError(f"the model file is {size / 1024**3:.1f} GiB (limit "
                             f"{MAX_MODEL_BYTES / 1024**3:.0f} GiB); it was not opened", _FIX, reason="too_large")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(f"not an xl-expense model file (not a complete zip archive: {exc})") from None
    names = archive.namelist()
    if sorted(names) != sorted([META_MEMBER, PAYLOAD_MEMBER]):
        raise ModelFileError(f"not an xl-expense model file (a zip archive without our {META_MEMBER} and "
                             f"{PAYLOAD_MEMBER})")
    _check_zip_limits(archive, "the model file")
    meta_bytes = _read_member(archive, META_MEMBER)
    return meta_bytes, lambda: _read_member(archive, PAYLOAD_MEMBER)


def _check_zip_limits(archive: zipfile.ZipFile, what: str) -> None:
    """The zip-bomb limits of :mod:`xl_expense.io.safety`, from the central directory alone."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ModelFileError(f"{what} has {len(members):,} parts (limit {MAX_MEMBERS:,}); "
                             "it looks like a zip bomb and was not opened", reason="too_large")
    total = sum(m.file_size for m in members)
    if total > MAX_MODEL_BYTES:
        raise ModelFileError(f"{what} would expand to {total / 1024**3:.1f} GiB (limit "
                             f"{MAX_MODEL_BYTES / 1024**3:.0f} GiB); it looks like a zip bomb and was not opened",
                             reason="too_large")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ModelFileError(f"part {member.filename} of {what} expands {ratio:,.0f}× (limit "
                                 f"{MAX_COMPRESSION_RATIO}×); it looks like a zip bomb and was not opened",
                                 reason="too_large")


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, never more than its directory entry claims (a lying entry is damage)."""
    info = archive.getinfo(name)
    limit = MAX_META_BYTES if name == META_MEMBER else MAX_MODEL_BYTES
    if info.file_size > limit:
        raise ModelFileError(f"not an xl-expense model file ({name} is {info.file_size:,} bytes)")
    try:
        with archive.open(info) as stream:
            data = stream.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise ModelFileError(f"the model file is damaged ({name}: {exc})", reason="damaged") from None
    if len(data) != info.file_size:
        raise ModelFileError(f"the model file is damaged ({name} has the wrong size)", reason="damaged")
    return data


def _parse_meta(meta_bytes: bytes) -> dict:
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"not an xl-expense model file ({META_MEMBER} is not our metadata)")
    return meta


def _check_format(meta: dict) -> None:
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"the model file has format version {version!r}; this xl-expense reads version "
                             f"{FORMAT_VERSION}", _FIX, reason="version")


def _check_expected(meta: dict, expect: Mapping[str, Any] | None) -> None:
    if not expect:
        return
    wanted = json.loads(json.dumps(dict(expect), ensure_ascii=False))  # tuples → lists, as stored
    differences = {key: (meta.get(key), value) for key, value in wanted.items() if meta.get(key) != value}
    if differences:
        raise ModelStale(differences)


def _check_sklearn_version(meta: dict) -> None:
    """Refuse a model saved by another scikit-learn major.minor (patch releases keep the format)."""
    versions = meta.get("versions")
    saved = versions.get("sklearn") if isinstance(versions, dict) else None
    if not isinstance(saved, str) or _major_minor(saved) != _major_minor(sklearn.__version__):
        raise ModelFileError(f"the model was saved with scikit-learn {saved} and this is scikit-learn "
                             f"{sklearn.__version__}; a model from another version can mispredict", _FIX,
                             reason="version")


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _check_checksum(meta: dict, payload: bytes) -> None:
    if hashlib.sha256(payload).hexdigest() != meta.get("payload_sha256"):
        raise ModelFileError("the model file was modified after it was saved (checksum mismatch)", _FIX,
                             reason="tampered")


def _read_schema(payload: bytes) -> Any:
    """The payload's ``schema.json``: skops' description of every object it would build."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ModelFileError(f"the model file is damaged (its payload is not a skops archive: {exc})",
                             reason="damaged") from None
    with archive:
        _check_zip_limits(archive, "the model payload")
        if "schema.json" not in archive.namelist():
            raise ModelFileError("the model file is damaged (its payload has no schema.json)", reason="damaged")
        text = _read_member(archive, "schema.json")
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"the model file is damaged (schema.json: {type(exc).__name__})",
                             reason="damaged") from None


def _check_types(schema: Any) -> list[str]:
    """Refuse the file unless every type (and function) its schema names is allowed.

    Returns the names to pass to skops as trusted: exactly those found and allowed here.
    """
    named, refused = _schema_types(schema)
    if refused:
        shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
        raise ModelFileError(f"the model file contains types that are not allowed ({shown}); only scikit-learn, "
                             "NumPy, SciPy and xl-expense types are loaded, so it was not opened", _FIX,
                             reason="untrusted")
    return named


def _schema_types(schema: Any) -> tuple[list[str], list[str]]:
    """``module.name`` of every node in the schema: (allowed, refused), each sorted.

    Walks every dict and list of the JSON iteratively (no recursion limit), so no node skops
    could build is missed: a node is any dict with ``__loader__``, ``__module__`` or ``__class__``.
    """
    allowed: set[str] = set()
    refused: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(node.values())
        if not any(key in node for key in ("__loader__", "__module__", "__class__")):
            continue
        module, name, loader = node.get("__module__"), node.get("__class__"), node.get("__loader__")
        if not all(isinstance(v, str) for v in (module, name, loader)):
            refused.add(f"{module}.{name} (malformed node)")
        elif is_allowed(module, name, loader):
            allowed.add(f"{module}.{name}")
        else:
            refused.add(f"{module}.{name}")
    return sorted(allowed), sorted(refused)


def is_allowed(module: str, name: str, loader: str = "ObjectNode") -> bool:
    """True when a skops node of ``loader`` kind for ``module.name`` may be rebuilt."""
    if loader in _CALLABLE_LOADERS:
        return loader == "FunctionNode" and module.startswith(FUNCTION_PREFIXES)
    if module == "builtins":
        return name in ALLOWED_BUILTINS
    return module in ALLOWED_MODULES or module.startswith(ALLOWED_PREFIXES)


def _rebuild(payload: bytes, trusted: list[str]) -> Pipeline:
    """Let skops build the model, trusting only the types :func:`_check_types` allowed.

    skops audits the tree again against that list before constructing anything (and we skip
    :func:`skops.io.get_untrusted_types`, which would build the whole tree a second time:
    a third of the load time of a large model).
    """
    try:
        model = sio.loads(payload, trusted=trusted)
    except UntrustedTypesFoundException as exc:  # skops saw a type our walk did not: refuse it
        raise ModelFileError(f"the model file contains types that are not allowed ({exc}); it was not opened",
                             _FIX, reason="untrusted") from None
    except Exception as exc:  # noqa: BLE001 — skops raises many kinds on a crafted or damaged schema
        raise ModelFileError(f"the model file could not be rebuilt ({type(exc).__name__}: {exc})", _FIX,
                             reason="damaged") from None
    if not isinstance(model, Pipeline):
        raise ModelFileError(f"the model file holds a {type(model).__name__}, not a classification pipeline",
                             _FIX, reason="not_a_model")
    _expand_vocabularies(model)
    return model


__all__ = [
    "MODEL_SUFFIX",
    "ModelFileError",
    "ModelStale",
    "library_versions",
    "load_model",
    "model_path_for",
    "save_model",
]
