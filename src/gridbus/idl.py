"""IDL compilation: the wheel's idlc, made runnable, and the annotations it drops.

Two jobs live here:

* Run the ``idlc`` bundled in cyclonedds 11.0.1.  That binary segfaults at
  start (upstream cyclonedds-python issue #336): the end of its ELF dynamic
  section lies in a read-only LOAD segment, where the loader must write.  We
  never patch site-packages; we copy the binary to a cache directory and mark
  the LOAD segment covering the dynamic section writable in the copy.
* Read the annotations the Python backend drops (``@unit``, ``@range``,
  ``@min``, ``@max`` and trailing ``//`` comments) from the IDL text, so that
  units can be shown and values checked when a sample is built.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import keyword
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TypedDict

from .errors import IdlError
from .files import read_text
from .resources import package_path

PT_LOAD, PT_DYNAMIC, PF_W = 1, 2, 2
PACKAGE_ROOT = "gridbus.types"  # generated modules live under this package
TYPES_DIR = Path(__file__).parent / "types"  # where `gridbus idl generate` writes: the source tree
METADATA_FILE = package_path("types", "metadata.json")  # what the package reads (gridbus.resources)


# --------------------------------------------------------------------------- idlc
def _cyclonedds_dir() -> Path:
    spec = importlib.util.find_spec("cyclonedds")
    if spec is None or spec.origin is None:
        raise IdlError("cyclonedds is not installed: pip install cyclonedds==11.0.1")
    return Path(spec.origin).parent


def python_backend() -> Path:
    """The idlc Python backend, as ``python -m cyclonedds.__idlc__`` prints it."""
    out = subprocess.run(
        [sys.executable, "-m", "cyclonedds.__idlc__"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(out)


def make_loadable(src: bytes) -> bytes:
    """Return a copy of an ELF64 executable whose dynamic section is writable.

    Every PT_LOAD segment whose pages overlap PT_DYNAMIC gets the PF_W flag.
    """
    if src[:4] != b"\x7fELF" or src[4] != 2 or src[5] != 1:
        raise IdlError("idlc is not a little-endian ELF64 executable; cannot fix it")
    data = bytearray(src)
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    headers = []
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, p_flags, _o, vaddr, _pa, _fs, memsz = struct.unpack_from("<IIQQQQQ", data, off)
        headers.append((off, p_type, p_flags, vaddr, memsz))
    dynamic = [(v, v + m) for _, t, _, v, m in headers if t == PT_DYNAMIC]
    for off, p_type, flags, vaddr, memsz in headers:
        if p_type != PT_LOAD or flags & PF_W:
            continue
        lo, hi = vaddr & ~0xFFF, (vaddr + memsz + 0xFFF) & ~0xFFF
        if any(lo < d_end and hi > d_start for d_start, d_end in dynamic):
            struct.pack_into("<I", data, off + 4, flags | PF_W)
    return bytes(data)


def idlc_path() -> Path:
    """A runnable copy of the wheel's idlc, fixed once and cached per content."""
    original = _cyclonedds_dir() / ".libs" / "idlc"
    if not original.exists():
        raise IdlError(f"idlc not found at {original}")
    blob = original.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gridbus"
    target = cache / f"idlc-{digest}"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(make_loadable(blob))
        tmp.chmod(0o755)
        tmp.replace(target)
    return target


def run_idlc(idl_file: Path, out_dir: Path, root_prefix: str = PACKAGE_ROOT) -> None:
    """Compile one IDL file to Python modules under ``out_dir``.

    The backend ignores ``-o`` when a root prefix is given, so idlc runs with
    ``out_dir`` as its working directory.  Errors carry idlc's own
    ``file:line:col`` messages.
    """
    idl_file = Path(idl_file).resolve()
    if not idl_file.is_file():
        raise IdlError(f"{idl_file}: no such IDL file")
    libs = _cyclonedds_dir().parent / "cyclonedds.libs"
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH")]))
    cmd = [
        str(idlc_path()),
        "-l",
        str(python_backend()),
        "-Wno-implicit-extensibility",
        "-p",
        f"py-root-prefix={root_prefix}",
        str(idl_file),
    ]
    proc = subprocess.run(cmd, cwd=out_dir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip() or f"idlc exited with {proc.returncode}"
        raise IdlError(f"{idl_file}: idlc failed:\n{message}")


# --------------------------------------------------------------------- metadata
_TOKEN = re.compile(
    r"""
    (?P<comment>//[^\n]*) |
    (?P<block>/\*.*?\*/) |
    (?P<annotation>@\w+(?:\s*\([^)]*\))?) |
    (?P<module>\bmodule\s+(?P<mname>\w+)\s*\{) |
    (?P<struct>\bstruct\s+(?P<sname>\w+)\s*(?::\s*[\w:]+\s*)?\{) |
    (?P<enum>\benum\s+\w+\s*\{[^}]*\}\s*;) |
    (?P<open>\{) |
    (?P<close>\}\s*;?) |
    (?P<decl>[^;{}@/]+;)
""",
    re.VERBOSE | re.DOTALL,
)
_ANNOTATION = re.compile(r"@(\w+)(?:\s*\((.*)\))?", re.DOTALL)
_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"


class FieldMeta(TypedDict, total=False):
    """What the IDL's annotations and comments say about one field (``types/metadata.json``)."""

    unit: str
    min: float
    max: float
    doc: str


Metadata = dict[str, dict[str, FieldMeta]]  # scoped struct name -> field name -> what the IDL says


def _annotation_values(name: str, args: str | None) -> FieldMeta:
    if name == "unit" and args:
        return {"unit": args.strip().strip('"')}
    if name in ("min", "max") and args and re.fullmatch(_NUMBER, args.strip()):
        return {"min": float(args)} if name == "min" else {"max": float(args)}
    meta: FieldMeta = {}
    if name == "range" and args:
        for bound, number in re.findall(rf"(min|max)\s*=\s*({_NUMBER})", args):  # the last one wins
            if bound == "min":
                meta["min"] = float(number)
            else:
                meta["max"] = float(number)
    return meta


def read_metadata(idl_text: str) -> Metadata:
    """Per struct (scoped name ``a::b::S``), per field: unit, min, max, doc.

    Only what idlc's Python backend drops is read here; syntax is idlc's job.
    """
    result: Metadata = {}
    scope: list[tuple[str, str]] = []  # (kind, name) of open blocks
    pending: FieldMeta = {}
    last_field: FieldMeta | None = None
    last_line = -1
    for m in _TOKEN.finditer(idl_text):
        line = idl_text.count("\n", 0, m.start())
        kind = m.lastgroup
        if kind == "comment":
            if last_field is not None and line == last_line:
                last_field["doc"] = m.group().lstrip("/").strip()
        elif kind == "annotation":
            a = _ANNOTATION.match(m.group())
            if a is None:  # _TOKEN's annotation is an _ANNOTATION: cannot happen
                raise IdlError(f"unreadable annotation {m.group()!r}")
            pending.update(_annotation_values(a.group(1), a.group(2)))
        elif kind == "module":
            scope.append(("module", m.group("mname")))
            pending = {}
        elif kind == "struct":
            scope.append(("struct", m.group("sname")))
            result["::".join(n for _, n in scope)] = {}
            pending = {}
        elif kind == "open":
            scope.append(("block", ""))
        elif kind == "close":
            if scope:
                scope.pop()
            pending, last_field = {}, None
        elif kind == "decl" and scope and scope[-1][0] == "struct":
            words = re.sub(r"\[.*?\]", "", m.group()).rstrip(";").split()
            if words:
                field = pending.copy()
                result["::".join(n for _, n in scope)][words[-1]] = field
                last_field, last_line = field, idl_text.count("\n", 0, m.end())
            pending = {}
        else:
            pending = {}
    return result


# ------------------------------------------------------------------------ names
_COMMENT_OR_STRING = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\])*"', re.DOTALL)
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_]\w*")
_IDL_KEYWORDS = {"in"}  # an IDL keyword (operation parameters) too


def check_names(idl_text: str, path: str | Path) -> None:
    """Refuse identifiers that are Python keywords (``lambda``, ``class``, ``async``...).

    idlc's Python backend renames most of them (``lambda`` becomes ``_lambda``,
    a field no C/C++ node has) and leaves ``async``/``await`` as they are
    (generated code that does not import).  Either way the Python side would not
    match the IDL on the wire, so such a name is an error at ``file:line``.
    """
    blank = _COMMENT_OR_STRING.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), idl_text)
    for m in _IDENTIFIER.finditer(blank):
        name = m.group()
        if keyword.iskeyword(name) and name not in _IDL_KEYWORDS:
            line = blank.count("\n", 0, m.start()) + 1
            raise IdlError(
                f"{path}:{line}: the name {name!r} is a Python keyword, which the "
                f"generated Python types cannot use as is (a renamed '_{name}' would match "
                "no C/C++ node): rename it in the IDL"
            )


# ----------------------------------------------------------------- generation
def generate(idl_files: list[Path], types_dir: Path = TYPES_DIR) -> list[Path]:
    """Regenerate the committed Python types and metadata from ``idl_files``.

    The hand-written ``types/__init__.py`` is kept; every generated module
    package (one per top-level IDL module) and ``metadata.json`` is replaced.
    """
    written: list[Path] = []
    metadata: Metadata = {}
    with tempfile.TemporaryDirectory() as tmp:
        for idl_file in idl_files:
            text = read_text(idl_file, IdlError, "IDL file")
            check_names(text, idl_file)
            run_idlc(Path(idl_file), Path(tmp))
            metadata.update(read_metadata(text))
        for entry in sorted(Path(tmp).iterdir()):
            if entry.is_dir():
                target = types_dir / entry.name
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(entry, target, ignore=shutil.ignore_patterns(".idlpy_manifest"))
                written.append(target)
    meta_path = types_dir / METADATA_FILE.name
    meta_path.write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
    written.append(meta_path)
    return written


def load_user_idl(idl_file: Path) -> tuple[list[str], Metadata]:
    """Compile a user's IDL file at run time and import its modules.

    Returns the top-level Python module names (under ``gridbus.types``) and
    the file's metadata.  Compiled code is cached by content hash.
    """
    idl_file = Path(idl_file)
    text = read_text(idl_file, IdlError, "IDL file")  # stat first: a FIFO must not hang
    check_names(text, idl_file)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gridbus" / "idl" / digest
    if not (cache / "done").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=cache.parent))
        run_idlc(idl_file, tmp)
        tops = [p.name for p in tmp.iterdir() if p.is_dir()]
        (tmp / "done").write_text(json.dumps(tops))
        try:
            tmp.rename(cache)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    tops = json.loads((cache / "done").read_text())
    import gridbus.types as types_pkg

    for top in tops:
        if (TYPES_DIR / top).exists():
            raise IdlError(
                f"{idl_file}: top-level module '{top}' is gridbus's own; put your types in a module of your own name"
            )
    if str(cache) not in types_pkg.__path__:
        types_pkg.__path__.append(str(cache))
    for top in tops:
        importlib.import_module(f"{PACKAGE_ROOT}.{top}")
    return tops, read_metadata(text)
