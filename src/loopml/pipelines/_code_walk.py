"""What a step's result depends on in code: its source, the sources of the user's helpers it
reaches, and the libraries it uses.

Starting from the step function, every global name its bytecode loads (in nested functions,
lambdas and comprehensions too) and every module it imports is followed:

* functions and classes of the step's own module, or of the user's project (code that is not
  in an installed distribution, or is installed in editable mode), count by their source,
  and what *they* reference is followed in turn;
* modules of the project count by their whole source;
* simple constants (numbers, strings, tuples of them) count by value;
* anything from an installed distribution counts by that distribution's version, the
  standard library not at all.

Sources count by their syntax tree without decorators, docstrings, comments or layout, so
changing a decorator's options or reformatting the file does not change the digest.
"""

from __future__ import annotations

import ast
import dis
import functools
import hashlib
import importlib.util
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from loopml.pipelines import _distributions

_MISSING: Final = object()
_LOADS: Final = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_SCALARS: Final = (type(None), bool, int, float, complex, str, bytes)


@dataclass(frozen=True, slots=True)
class Analysis:
    """The code digest, the top-level import names used, and the global bindings it read
    (``(namespace, name, value)``): while they still hold, the analysis is still right."""

    code: str
    modules: frozenset[str]
    bindings: tuple[tuple[dict[str, Any], str, object], ...]

    def still_valid(self) -> bool:
        return all(ns.get(name, _MISSING) is value for ns, name, value in self.bindings)


@dataclass(slots=True)
class _Walk:
    root_module: str
    entries: list[str] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)
    bindings: list[tuple[dict[str, Any], str, object]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)

    def local(self, module: str | None) -> bool:
        if not module:
            return False
        return module == self.root_module or _distributions.origin(module) == "project"

    def note_module(self, module: str) -> None:
        if _distributions.origin(module) == "library":
            self.modules.add(_distributions.top_level(module))

    def function(self, label: str, fn: types.FunctionType) -> None:
        if id(fn) in self.seen:
            return
        self.seen.add(id(fn))
        self.entries.append(f"{label}={_source_digest(fn)}")
        self.note_module(fn.__module__ or "")
        namespace = fn.__globals__
        package = namespace.get("__package__") or ""
        for code in _code_objects(fn.__code__):
            for instruction in _instructions(code):
                kind, name, level, fromlist = instruction
                if kind == "load":
                    value = namespace.get(name, _MISSING)
                    self.bindings.append((namespace, name, value))
                    if value is not _MISSING:
                        self.value(name, value)
                else:
                    self.imported(name, level, fromlist, package)
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                contents = cell.cell_contents
            except ValueError:  # not assigned yet
                continue
            self.value(f"{label}.{name}", contents)

    def klass(self, label: str, cls: type) -> None:
        if id(cls) in self.seen:
            return
        self.seen.add(id(cls))
        self.entries.append(f"{label}={_source_digest(cls)}")
        self.note_module(cls.__module__)
        for base in cls.__bases__:
            self.value(f"{label}<{base.__qualname__}", base)
        for attribute, member in vars(cls).items():
            for fn in _functions_of(member):
                self.function(f"{label}.{attribute}", fn)

    def value(self, label: str, value: object) -> None:
        if isinstance(value, types.ModuleType):
            name = value.__name__
            if self.local(name) and name != "__main__":
                self.entries.append(f"{label}=module:{_module_digest(name)}")
            else:
                self.note_module(name)
        elif isinstance(value, types.FunctionType):
            if self.local(value.__module__):
                self.function(label, value)
            else:
                self.note_module(value.__module__ or "")
        elif isinstance(value, type):
            if self.local(value.__module__):
                self.klass(label, value)
            else:
                self.note_module(value.__module__)
        elif _is_constant(value):
            self.entries.append(f"{label}=value:{_stable_repr(value)}")
        else:  # an instance: its class says where its behaviour comes from
            cls = type(value)
            if self.local(cls.__module__):
                self.klass(f"{label}:type", cls)
            else:
                self.note_module(cls.__module__)

    def imported(self, name: str, level: int, fromlist: tuple[str, ...], package: str) -> None:
        try:
            full = importlib.util.resolve_name("." * level + name, package) if level else name
        except (ImportError, ValueError):
            return
        if not full:
            return
        if _distributions.origin(full) != "project":
            self.note_module(full)
            return
        for module in (full, *(f"{full}.{item}" for item in fromlist)):
            digest = _module_digest(module)
            if digest:
                self.entries.append(f"import {module}=module:{digest}")


def analyse(fn: Callable[..., Any]) -> Analysis:
    target = _function_of(fn)
    if isinstance(target, type):
        walk = _Walk(target.__module__)
        walk.klass(target.__qualname__, target)
    elif isinstance(target, types.FunctionType):
        walk = _Walk(target.__module__ or "")
        walk.function(target.__qualname__, target)
    else:  # a builtin or other callable without Python code of its own
        walk = _Walk(getattr(target, "__module__", "") or "")
        walk.value(type(target).__qualname__, target)
        walk.entries.append(f"callable={getattr(target, '__qualname__', repr(type(target)))}")
    digest = hashlib.sha256("\n".join(sorted(walk.entries)).encode("utf-8")).hexdigest()
    bindings = {(id(ns), name): (ns, name, value) for ns, name, value in walk.bindings}
    return Analysis(digest, frozenset(walk.modules), tuple(bindings.values()))


def _function_of(fn: Callable[..., Any]) -> object:
    """The Python function (or class) behind a callable: unwrapped, unbound, un-partialled."""
    target: object = fn
    for _ in range(100):
        if isinstance(target, (types.MethodType, classmethod, staticmethod)):
            target = target.__func__
        elif isinstance(target, functools.partial):
            target = target.func
        elif hasattr(target, "__wrapped__"):
            target = target.__wrapped__
        else:
            break
    if not isinstance(target, (types.FunctionType, type, types.BuiltinFunctionType)):
        call = inspect.getattr_static(type(target), "__call__", None)
        if isinstance(call, types.FunctionType):
            return call
    return target


def _functions_of(member: object) -> list[types.FunctionType]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [
            f for f in (member.fget, member.fset, member.fdel) if isinstance(f, types.FunctionType)
        ]
    return [member] if isinstance(member, types.FunctionType) else []


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_code_objects(const))
    return found


def _instructions(code: types.CodeType) -> list[tuple[str, str, int, tuple[str, ...]]]:
    """(``load``, name, 0, ()) for each global name loaded and (``import``, module, level,
    fromlist) for each import, in order."""
    found: list[tuple[str, str, int, tuple[str, ...]]] = []
    consts: list[object] = []
    for instruction in dis.get_instructions(code):
        if instruction.opname in _LOADS and isinstance(instruction.argval, str):
            found.append(("load", instruction.argval, 0, ()))
        elif instruction.opname == "IMPORT_NAME" and isinstance(instruction.argval, str):
            level = consts[-2] if len(consts) >= 2 and isinstance(consts[-2], int) else 0
            fromlist = consts[-1] if consts and isinstance(consts[-1], tuple) else ()
            names = tuple(str(n) for n in fromlist if n != "*")
            found.append(("import", instruction.argval, level, names))
        if instruction.opname == "LOAD_CONST":
            consts.append(instruction.argval)
    return found


def _source_digest(obj: types.FunctionType | type) -> str:
    """The digest of an object's source tree (decorators, docstrings and layout left out),
    or of its bytecode when no source is available."""
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return "code:" + _bytecode_digest(obj)
    text = textwrap.dedent(source)
    try:
        tree = ast.parse(text)
    except SyntaxError:  # e.g. a lambda in the middle of an expression
        return "text:" + _sha(text)
    node = tree.body[0] if len(tree.body) == 1 else None
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        node.decorator_list = []
        _strip_docstrings(node)
        return "ast:" + _sha(ast.dump(node, include_attributes=False))
    return "ast:" + _sha(ast.dump(tree, include_attributes=False))


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _bytecode_digest(obj: types.FunctionType | type) -> str:
    if isinstance(obj, type):
        parts = [
            f"{name}:{_code_digest(fn.__code__)}"
            for name, member in sorted(vars(obj).items())
            for fn in _functions_of(member)
        ]
        return _sha(f"class {obj.__qualname__}\n" + "\n".join(parts))
    return _code_digest(obj.__code__)


def _code_digest(code: types.CodeType) -> str:
    """Bytecode, names and constants (nested code objects by their own digest)."""
    hasher = hashlib.sha256(code.co_code)
    hasher.update(repr((code.co_names, code.co_varnames, code.co_argcount)).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            hasher.update(_code_digest(const).encode())
        else:
            hasher.update(_stable_repr(const).encode())
    return hasher.hexdigest()


def _module_digest(name: str) -> str:
    """The digest of a module's source ("" when it has none, e.g. a compiled extension)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return ""
    loader = spec.loader if spec is not None else None
    get_source = getattr(loader, "get_source", None)
    if spec is None or get_source is None:
        return ""
    try:
        source = get_source(spec.name)
    except ImportError:
        return ""
    return _sha(source) if isinstance(source, str) else ""


def _is_constant(value: object) -> bool:
    if type(value) in _SCALARS:
        return True
    if type(value) in (tuple, frozenset):
        return all(_is_constant(item) for item in value)  # type: ignore[attr-defined]
    return False


def _stable_repr(value: object) -> str:
    """``repr``, with frozensets sorted (their order changes with string hashing)."""
    if isinstance(value, frozenset):
        return "frozenset({" + ", ".join(sorted(_stable_repr(v) for v in value)) + "})"
    if isinstance(value, tuple):
        return "(" + ", ".join(_stable_repr(v) for v in value) + ",)"
    return repr(value)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
