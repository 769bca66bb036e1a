"""hyperscale code-grading driver (embedded in the hyperscale binary).

Runs one generated program on its test inputs the way LiveCodeBench's
lcb_runner/evaluation/testing_util.py does (docs/grading.md §4), and reports what the program
produced. It holds no expected outputs and decides nothing: the harness
compares (src/grade/compare.rs). Everything in this process is untrusted,
this file included once the program runs; whatever the program writes to the
result channel only stands for its own output.

* standard-input problems: a last top-level `if __name__ == '__main__':` is
  replaced by its body, every top-level statement except imports is wrapped in
  a function, the LCB import prelude is prepended; per test, as LCB's
  call_method: `read`, `readlines` and `readline` of the original sys.stdin
  object are patched (so `from sys import stdin` sees the input), then
  sys.stdin becomes a StringIO of the input and `open` a mock_open; stdout is
  captured, SystemExit is swallowed. The captured text is reported.
* call-based problems: the prelude is prepended, the module is executed,
  `Solution()` is built when the code mentions `class Solution`, the method is
  called with the JSON-decoded input lines; a top-level tuple becomes a list;
  the return value is reported, serialised by `_encode`.
* before the reliability guard, the modules LCB's worker process already holds
  (multiprocessing, numpy where installed) and the program's own top-level
  imports are imported, so that e.g. `import multiprocessing` finds the module
  loaded, as in the reference, instead of dying on `os.getcwd = None`.
* a per-test alarm (`timeout` seconds) raises TimeoutException.

Protocol: `python3 -I driver.py JOB`, JOB a JSON file (deleted after reading:
mode, code, fn_name, inputs, timeout, output_cap). Frames go to a private
duplicate of the original stdout; fd 1 is pointed at stderr. A frame is a
header line `KIND TEST LENGTH` and LENGTH bytes: OUT (captured stdout, UTF-8),
VAL (the encoded return value, JSON), ERR (`kind` newline `detail`). TEST is
the 0-based test index, or `-` for a failure before the first test.
"""

import ast
import builtins
import io
import json
import os
import signal
import sys
import types
from unittest.mock import mock_open, patch

IMPORT_PRELUDE = (
    "from string import *\nfrom re import *\nfrom datetime import *\n"
    "from collections import *\nfrom heapq import *\nfrom bisect import *\n"
    "from copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\nimport string\nimport re\n"
    "import datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\n"
    "import functools\nimport operator\nimport io\nimport sys\nimport json\n"
    "sys.setrecursionlimit(50000)\n"
)

_isinstance = isinstance


class TimeoutException(Exception):
    """Raised by the per-test alarm (an Exception, as in LCB)."""


class OutputLimitExceeded(BaseException):
    """The captured stdout grew past the cap (not an Exception, so a bare
    `except Exception` in the program cannot swallow it)."""


def _on_alarm(signum, frame):
    raise TimeoutException


class _Capture(io.StringIO):
    def __init__(self, cap):
        super().__init__()
        self._left = cap
        # As in LCB: closing the captured stdout is not allowed to discard it.
        self.close = lambda x: 1

    def write(self, s):
        self._left -= len(s)
        if self._left < 0:
            raise OutputLimitExceeded
        return super().write(s)


def _strip_main_guard(code):
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if _isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:
        pass
    return code


def _wrap_in_function(code):
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if _isinstance(s, (ast.Import, ast.ImportFrom))]
        others = [s for s in tree.body if not _isinstance(s, (ast.Import, ast.ImportFrom))]
        fn = ast.FunctionDef(
            name="wrapped_function",
            args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=others,
            decorator_list=[],
            lineno=-1,
        )
        return IMPORT_PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(fn)
    except Exception:
        return code


def _preimport(code):
    """Imports what LCB's worker already holds and the program's top-level
    imports, before the guard. Failures are left for the program to meet."""
    import importlib

    names = ["multiprocessing", "numpy"]
    try:
        for stmt in ast.parse(code).body:
            if _isinstance(stmt, ast.Import):
                names.extend(alias.name for alias in stmt.names)
            elif _isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
                names.append(stmt.module)
    except Exception:
        pass
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            pass


def _guard():
    """LCB's reliability_guard (no memory limit: the sandbox sets it)."""
    import faulthandler
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in (
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid",
        "fork", "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink",
        "fchmod", "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown",
        "getcwd", "chdir",
    ):
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def _classify(exc):
    if _isinstance(exc, TimeoutException):
        return "timeout"
    if _isinstance(exc, MemoryError):
        return "memory"
    if _isinstance(exc, OutputLimitExceeded):
        return "output_limit"
    return "runtime_error"


def _encode(value, top):
    """The return value as JSON the harness reads back (compare.rs PyValue):
    JSON null/bools/strings/lists, {"int": digits}, {"float": repr},
    {"tuple": [...]}, {"dict": [[k, v], ...]}, {"opaque": type name}. Only
    the built-in types' own data is read, never their overridden methods, so
    an object whose __eq__ says yes is opaque and equals nothing."""
    if value is None or value is True or value is False:
        return value
    if _isinstance(value, int):
        return {"int": int.__repr__(value)}
    if _isinstance(value, float):
        return {"float": float.__repr__(value)}
    if _isinstance(value, str):
        return str.__str__(value)
    if _isinstance(value, tuple):
        items = [_encode(v, False) for v in tuple.__iter__(value)]
        return items if top else {"tuple": items}
    if _isinstance(value, list):
        return [_encode(v, False) for v in list.__iter__(value)]
    if _isinstance(value, dict):
        return {"dict": [[_encode(k, False), _encode(v, False)] for k, v in dict.items(value)]}
    import numbers

    if _isinstance(value, numbers.Integral):
        try:
            return {"int": int.__repr__(int(value))}
        except BaseException:
            pass
    return {"opaque": type(value).__name__}


class Run:
    def __init__(self, out):
        self._out = out

    def frame(self, kind, test, payload):
        data = payload.encode("utf-8", "surrogatepass")
        index = "-" if test is None else str(test)
        self._out.write(("%s %s %d\n" % (kind, index, len(data))).encode("ascii") + data)
        self._out.flush()

    def fail(self, test, exc):
        self.frame("ERR", test, _classify(exc) + "\n" + repr(exc)[:600])

    def stdio(self, job):
        timeout = job["timeout"]
        code = _wrap_in_function(_strip_main_guard(job["code"]))
        module = _compile(code, timeout)
        method = getattr(module, "wrapped_function", None)
        if method is None:
            self.frame("ERR", None, "runtime_error\nno wrapped_function after compiling")
            return
        for i, given in enumerate(job["inputs"]):
            capture = _Capture(job["output_cap"])
            saved = sys.stdout
            sys.stdout = capture
            signal.alarm(timeout)
            try:
                _call_with_input(method, given)
                signal.alarm(0)
            except BaseException as exc:
                signal.alarm(0)
                sys.stdout = saved
                self.fail(i, exc)
                return
            finally:
                signal.alarm(0)
                sys.stdout = saved
            self.frame("OUT", i, capture.getvalue())

    def call(self, job):
        timeout = job["timeout"]
        code = IMPORT_PRELUDE + "\n\n" + job["code"]
        module = _compile(code, timeout)
        target = module.Solution() if "class Solution" in code else module
        fn_name = job["fn_name"]
        method = getattr(target, fn_name, None) if hasattr(target, fn_name) else None
        if method is None:
            self.frame("ERR", None, "runtime_error\nno method `%s`" % fn_name)
            return
        inputs = [[json.loads(line) for line in given.split("\n")] for given in job["inputs"]]
        for i, args in enumerate(inputs):
            signal.alarm(timeout)
            try:
                pred = method(*args)
                signal.alarm(0)
            except BaseException as exc:
                signal.alarm(0)
                self.fail(i, exc)
                return
            finally:
                signal.alarm(0)
            limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
            try:
                if limit is not None:
                    sys.set_int_max_str_digits(0)
                encoded = json.dumps(_encode(pred, True))
            except BaseException as exc:
                encoded = json.dumps({"opaque": "unencodable: " + type(exc).__name__})
            finally:
                if limit is not None:
                    sys.set_int_max_str_digits(limit)
            self.frame("VAL", i, encoded)


def _call_with_input(method, given):
    """LCB's call_method: the patches are entered in the order its stacked
    decorators enter them (bottom first)."""
    lines = iter(given.split("\n"))
    with patch("sys.stdin.read", lambda *args: given), patch(
        "sys.stdin.readlines", lambda *args: given.split("\n")
    ), patch("sys.stdin.readline", lambda *args: next(lines)), patch(
        "sys.stdin", io.StringIO(given)
    ), patch("builtins.open", mock_open(read_data=given)):
        try:
            return method()
        except SystemExit:
            pass


def _compile(code, timeout):
    signal.alarm(timeout)
    try:
        module = types.ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        return module
    finally:
        signal.alarm(0)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    os.unlink(sys.argv[1])
    out = open(os.dup(1), "wb")
    os.dup2(2, 1)
    run = Run(out)
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(50000)
    signal.signal(signal.SIGALRM, _on_alarm)
    _preimport(job["code"])
    _guard()
    try:
        if job["mode"] == "stdio":
            run.stdio(job)
        else:
            run.call(job)
    except BaseException as exc:
        run.fail(None, exc)


main()
