"""Compiled tree kernels, cached by model content: in memory per process, on disk per user.

The key hashes every array of the ensemble, its flags, the kernel version and the machine
(LLVM version, triple, host CPU and its features: the code is compiled for this CPU). The disk
entry `<key>.o` in `$BYOM_KERNEL_CACHE` (default `~/.cache/byom/kernels`, created 0700, and
used only if it is this user's and no one else can write to it) is a header, then the object
code:

    MAGIC (8 bytes) | key (64 ASCII hex) | payload length (8, little-endian) | sha256 (32) | object

A file that is truncated, foreign (another key, another format) or corrupt fails the check and
is compiled again and replaced. Files are written to a temporary name and renamed, so a reader
never sees half a file and two processes compiling the same model both succeed (the last rename
wins; both files are the same code). Loading an entry takes milliseconds; compiling, seconds.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import stat
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from byom.cache import ContentCache
from byom.trees import kernel as k
from byom.trees.ensemble import TreeEnsemble

log = logging.getLogger(__name__)

MAGIC = b"BYOMKRN\x01"
_HEADER = len(MAGIC) + 64 + 8 + 32
_ARRAYS = (
    *("roots", "feature", "threshold", "op", "yes", "no", "missing", "missing_kind"),
    *("cat_start", "cat_len", "cat_words", "leaf_start", "leaf_count", "leaf_output"),
    *("leaf_weight", "base", "trees_per_output"),
)


@dataclass
class KernelStats:
    """What this process did to get its kernels (tests read it)."""

    compiled: int = 0
    disk_loads: int = 0
    rebuilt: int = 0  # disk entries that failed the check
    compile_seconds: float = 0.0
    load_seconds: float = 0.0


STATS = KernelStats()
_memory: ContentCache[k.Kernel] = ContentCache()  # by code size, like the scorers
#: Objects are linked by LLVM's JITLink (ORC), which places an object's code and constant
#: tables in one block of memory, so the small code model's 32-bit references between them
#: always reach. (MCJIT maps them separately, wherever mmap puts them: in a process with an
#: embedded JVM they landed over 2 GB apart and aborted the process in RuntimeDyldELF.) The
#: small model is about twice as fast as the large one, whose 64-bit addresses cost a
#: register per constant.
CODE_MODEL = "small"
_llvm_lock = threading.Lock()  # LLVM's global context is not for concurrent compiles


def kernel_for(ensemble: TreeEnsemble) -> k.Kernel | None:
    """The ensemble's kernel (from memory, disk, or compiled now), or None with a one-line
    notice when the numpy path must score it."""
    # Hashing every array costs milliseconds: an engine scores batches of a few thousand rows,
    # so the key (or why there is no kernel) is found once per ensemble object (ensembles are
    # not changed once built).
    known = _keys.get(id(ensemble))
    if known is not None and known[0]() is ensemble:
        reason, key = known[1:]
    else:
        reason = k.why_not(ensemble)
        key = kernel_key(ensemble) if reason is None else ""
        _keys[id(ensemble)] = (weakref.ref(ensemble), reason, key)
        weakref.finalize(ensemble, _keys.pop, id(ensemble), None)
    if reason is not None:
        k.notice(reason)
        return None
    return _memory.get_or_load(key, lambda: _load_or_compile(ensemble, key))


#: id(ensemble) -> (a weak reference to it, why it has no kernel or None, its key); an entry
#: leaves with its ensemble.
_keys: dict[int, tuple[weakref.ref[TreeEnsemble], str | None, str]] = {}


@functools.cache
def _machine() -> tuple[object, ...]:
    """What the object code depends on beside the model: LLVM and the CPU it compiles for."""
    llvm = k.llvm
    return (
        CODE_MODEL,
        llvm.llvm_version_info,
        llvm.get_process_triple(),
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
    )


def kernel_key(e: TreeEnsemble) -> str:
    """sha256 of the ensemble's content, the kernel version and the machine."""
    h = hashlib.sha256()
    layout = (k.KERNEL_VERSION, k.BLOCK_ROWS, k.CHUNK_NODES, k.GROUP_NODES, k.LANES)
    walk = (k.WALK_LANES, k.WALK_FEATURES, k.TOP_LEVELS)
    h.update(repr((*layout, k.VECTOR_LEAVES, *walk, k.ZERO_THRESHOLD, *_machine())).encode())
    flags = (e.float32, e.sum_float32, e.aggregate, e.negative_not_in_set)
    h.update(repr((e.n_features, e.n_outputs, *flags)).encode())
    for name in _ARRAYS:
        a = np.ascontiguousarray(getattr(e, name))
        h.update(f"{name} {a.dtype.str} {a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cache_dir() -> Path | None:
    """The per-user disk cache, created 0700; None (with a notice) where it is unusable."""
    folder = Path(
        os.environ.get("BYOM_KERNEL_CACHE") or Path.home() / ".cache" / "byom" / "kernels"
    )
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        _disk_notice(f"cannot create {folder} ({exc.strerror})")
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        _disk_notice(f"{folder} belongs to another user or others can write to it")
        return None
    return folder


def _disk_notice(reason: str) -> None:
    if reason not in k._noticed:
        k._noticed.add(reason)
        log.warning(
            "byom trees: kernel disk cache off: %s; kernels compile in each process", reason
        )


def _load_or_compile(e: TreeEnsemble, key: str) -> tuple[k.Kernel, int]:
    folder = cache_dir()
    path = folder / f"{key}.o" if folder else None
    obj = read_entry(path, key) if path and path.exists() else None
    if obj is not None:
        started = time.perf_counter()
        kernel = load_object(obj, e)
        STATS.disk_loads += 1
        STATS.load_seconds += time.perf_counter() - started
        return kernel, len(obj)
    if path and path.exists():
        STATS.rebuilt += 1
        log.warning("byom trees: kernel cache entry %s failed its check; compiling again", path)
    started = time.perf_counter()
    obj = compile_object(e)
    kernel = load_object(obj, e)
    STATS.compiled += 1
    STATS.compile_seconds += time.perf_counter() - started
    if path:
        write_entry(path, key, obj)
    return kernel, len(obj)


def _target_machine() -> object:
    llvm = k.llvm
    llvm.initialize_native_target()  # idempotent
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=3,
        reloc="pic",
        codemodel=CODE_MODEL,
    )


def compile_object(e: TreeEnsemble) -> bytes:
    """Generate, optimise (no fast-math: IEEE results) and emit the object code."""
    llvm = k.llvm
    text = k.generate_ir(e)
    with _llvm_lock:
        module = llvm.parse_assembly(text)
        module.verify()
        machine = _target_machine()
        # O1 optimises branchy tree code as well as O3 here, in a third of the time; the row
        # loops gain nothing from unrolling or vectorising.
        tuning = llvm.create_pipeline_tuning_options(1)
        tuning.loop_unrolling = tuning.loop_vectorization = tuning.slp_vectorization = False
        builder = llvm.create_pass_builder(machine, tuning)
        builder.getModulePassManager().run(module, builder)
        return bytes(machine.emit_object(module))  # type: ignore[attr-defined]


def load_object(obj: bytes, e: TreeEnsemble) -> k.Kernel:
    """Link the object code as a library of its own in the process's JIT; the kernel holds the
    library's tracker, which unloads the code when the kernel goes."""
    llvm = k.llvm
    global _jit
    with _llvm_lock:
        if _jit is None:
            _jit = llvm.create_lljit_compiler(_target_machine(), use_jit_link=True)
        library = llvm.JITLibraryBuilder().add_object_img(obj).add_current_process()
        tracker = library.export_symbol(k.ENTRY).link(_jit, f"byom_kernel_{next(_libraries)}")
        address = tracker[k.ENTRY]
    if not address:
        raise RuntimeError(f"compiled tree kernel has no {k.ENTRY} symbol")
    return k.Kernel(tracker, address, e)


_jit: Any = None  # the process's LLJIT, made on the first load
_libraries = itertools.count()  # a library's name cannot be reused, even once unloaded


def read_entry(path: Path, key: str) -> bytes | None:
    """The object code of a valid entry for key, or None (missing, truncated, foreign)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < _HEADER or not data.startswith(MAGIC):
        return None
    at = len(MAGIC)
    if data[at : at + 64] != key.encode():
        return None
    size = int.from_bytes(data[at + 64 : at + 72], "little")
    digest, payload = data[at + 72 : _HEADER], data[_HEADER:]
    if size != len(payload) or hashlib.sha256(payload).digest() != digest:
        return None
    return payload


def write_entry(path: Path, key: str, obj: bytes) -> None:
    """Write atomically (temporary file, then rename); a failure only costs the cache."""
    header = MAGIC + key.encode() + len(obj).to_bytes(8, "little") + hashlib.sha256(obj).digest()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header + obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("byom trees: cannot write kernel cache entry %s: %s", path, exc)


def clear_memory() -> None:
    """Forget the kernels loaded in this process (tests)."""
    _memory.clear()
