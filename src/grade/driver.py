"""hyperscale code-grading driver (embedded in the hyperscale binary).

Runs one generated program against its tests with the semantics of
LiveCodeBench's lcb_runner/evaluation/testing_util.py (docs/grading.md §4),
re-written from that description:

* standard-input problems: a last top-level `if __name__ == '__main__':` is
  replaced by its body, every top-level statement except imports is wrapped in
  a function, the LCB import prelude is prepended; per test, stdin and `open`
  are mocked with the input, stdout is captured, SystemExit is swallowed; the
  output is compared line by line after strip, then token by token as Decimal;
* call-based problems: the prelude is prepended, the module is executed,
  `Solution()` is built when the code mentions `class Solution`, and the
  method is called with the JSON-decoded input lines; a tuple becomes a list;
  the result is compared with `==` to the JSON-decoded output;
* a per-test alarm (`timeout` seconds) raises TimeoutException; grading stops
  at the first failure.

Protocol: `python3 -I driver.py JOB` where JOB is a JSON file (deleted after
reading). Results are JSON lines on a private duplicate of the original stdout;
the program's own file-descriptor 1 is pointed at stderr, which the sandbox caps.
Lines: {"test": i, "ok": true} per passing test, then either
{"test": i|null, "ok": false, "code": -2|-3|-4, "kind": ..., "detail": ...}
or {"done": true}. Mode "compare" only runs the stdout comparison on pairs.
"""

import ast
import builtins
import io
import json
import os
import signal
import sys
import types
from decimal import Decimal
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

_dumps = json.dumps
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


class _StdinBytes:
    def __init__(self, text):
        self._data = text.encode("utf-8")

    def read(self, *args):
        return self._data

    def readline(self, *args):
        return self._data.split(b"\n")[0] + b"\n"


class _Stdin:
    """What LCB's mocked sys.stdin does: read() is the whole input, readline()
    reads the next line with its newline, readlines() is input.split('\\n'),
    .buffer gives bytes; other attributes come from a StringIO. It is not
    iterable (LCB's is not either)."""

    def __init__(self, text):
        self._text = text
        self._io = io.StringIO(text)
        self.buffer = _StdinBytes(text)

    def read(self, *args):
        return self._text

    def readline(self, *args):
        return self._io.readline(*args)

    def readlines(self, *args):
        return self._text.split("\n")

    def __getattr__(self, name):
        return getattr(self._io, name)


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


def _stripped_lines(text):
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line):
    try:
        return [Decimal(tok) for tok in line.split()]
    except Exception:
        return None


def outputs_match(pred, expected):
    """LCB's stdout comparison: same number of stripped lines; each pair equal
    as strings or as lists of Decimal tokens."""
    pred_lines = _stripped_lines(pred)
    gold_lines = _stripped_lines(expected)
    if len(pred_lines) != len(gold_lines):
        return False
    for p, g in zip(pred_lines, gold_lines):
        if p == g:
            continue
        dp = _decimals(p)
        dg = _decimals(g)
        if dp is None or dg is None or dp != dg:
            return False
    return True


def _guard():
    """LCB's reliability_guard (no memory limit: the sandbox sets rlimits)."""
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
        return -3, "timeout"
    if _isinstance(exc, MemoryError):
        return -4, "memory"
    if _isinstance(exc, OutputLimitExceeded):
        return -4, "output_limit"
    return -4, "runtime_error"


def _compile(code, timeout):
    signal.alarm(timeout)
    try:
        module = types.ModuleType("tmp_sol", "")
        exec(code, module.__dict__)
        return module
    finally:
        signal.alarm(0)


class Run:
    def __init__(self, out):
        self._out = out

    def emit(self, obj):
        self._out.write(_dumps(obj) + "\n")
        self._out.flush()

    def fail(self, test, code, kind, detail):
        self.emit({"test": test, "ok": False, "code": code, "kind": kind, "detail": detail[:600]})

    def fail_exc(self, test, exc):
        code, kind = _classify(exc)
        self.fail(test, code, kind, repr(exc))

    def stdio(self, job):
        timeout = job["timeout"]
        code = _wrap_in_function(_strip_main_guard(job["code"]))
        module = _compile(code, timeout)
        method = getattr(module, "wrapped_function", None)
        if method is None:
            self.fail(None, -4, "runtime_error", "no wrapped_function after compiling")
            return
        for i, (given, expected) in enumerate(zip(job["inputs"], job["outputs"])):
            capture = _Capture(job["output_cap"])
            saved = sys.stdout
            sys.stdout = capture
            signal.alarm(timeout)
            try:
                with patch("builtins.open", mock_open(read_data=given)), patch("sys.stdin", _Stdin(given)):
                    try:
                        method()
                    except SystemExit:
                        pass
                signal.alarm(0)
            except BaseException as exc:
                signal.alarm(0)
                sys.stdout = saved
                self.fail_exc(i, exc)
                return
            finally:
                signal.alarm(0)
                sys.stdout = saved
            pred = capture.getvalue()
            if not outputs_match(pred, expected):
                self.fail(i, -2, "wrong_answer", "output: " + pred[:150] + " | expected: " + expected[:150])
                return
            self.emit({"test": i, "ok": True})

    def call(self, job):
        timeout = job["timeout"]
        code = IMPORT_PRELUDE + "\n\n" + job["code"]
        module = _compile(code, timeout)
        target = module.Solution() if "class Solution" in code else module
        fn_name = job["fn_name"]
        method = getattr(target, fn_name, None) if hasattr(target, fn_name) else None
        if method is None:
            self.fail(None, -4, "runtime_error", "no method `%s`" % fn_name)
            return
        inputs = [[json.loads(line) for line in given.split("\n")] for given in job["inputs"]]
        outputs = [json.loads(expected) for expected in job["outputs"]]
        for i, (args, expected) in enumerate(zip(inputs, outputs)):
            signal.alarm(timeout)
            try:
                pred = method(*args)
                signal.alarm(0)
                if _isinstance(pred, tuple):
                    pred = list(pred)
                ok = pred == expected
            except BaseException as exc:
                signal.alarm(0)
                self.fail_exc(i, exc)
                return
            finally:
                signal.alarm(0)
            if not ok:
                self.fail(i, -2, "wrong_answer", "output: " + repr(pred)[:150] + " | expected: " + repr(expected)[:150])
                return
            self.emit({"test": i, "ok": True})


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    os.unlink(sys.argv[1])
    out = open(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    run = Run(out)
    if job["mode"] == "compare":
        run.emit({"matches": [outputs_match(p, e) for p, e in job["pairs"]]})
        return
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(50000)
    signal.signal(signal.SIGALRM, _on_alarm)
    _guard()
    try:
        if job["mode"] == "stdio":
            run.stdio(job)
        else:
            run.call(job)
    except BaseException as exc:
        run.fail_exc(None, exc)
        return
    run.emit({"done": True})


main()
