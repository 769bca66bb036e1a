#!/usr/bin/env python3
"""Regenerates tests/data/vectors/math_nemo_reference_vectors.json: the
verdicts of the reference math grader, NeMo-Skills `extract_answer` +
`math_equal` (nemo_skills/evaluation/math_grader.py at
NVIDIA/NeMo-Skills@0b012df8) with math-verify, on every case the Rust port
claims to follow, plus `normalize_latex` outputs for both configurations NeMo
uses.

Run it outside the repository's environment:

    python -m venv /tmp/mathref && /tmp/mathref/bin/pip install 'math-verify[antlr4_9_3]'
    git -C NeMo-Skills show 0b012df8:nemo_skills/evaluation/math_grader.py > /tmp/math_grader.py
    /tmp/mathref/bin/python scripts/gen_math_nemo_vectors.py /tmp/math_grader.py \
        tests/data/vectors/math_nemo_reference_vectors.json

The NeMo file is loaded as is; only its `nemo_skills.utils` logger import is
replaced, because nothing else of NeMo-Skills is needed.
"""
import json, sys, types, importlib.metadata as md

_utils = types.ModuleType("nemo_skills.utils")
_utils.get_logger_name = lambda f: f
sys.modules.setdefault("nemo_skills", types.ModuleType("nemo_skills"))
sys.modules["nemo_skills.utils"] = _utils
_grader = types.ModuleType("math_grader")
_grader.__file__ = sys.argv[1]
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), _grader.__dict__)
math_equal, extract_answer = _grader.math_equal, _grader.extract_answer
from latex2sympy2_extended import normalize_latex, NormalizationConfig
from math_verify import LatexExtractionConfig
FULL = LatexExtractionConfig().normalization_config

B = lambda s: "So the final answer is $\\boxed{" + s + "}$."
# (rule, case, response, gold)
cases = [
 # regressions named in issue 21 item 8
 ("regression", "aime24-I-1 answer with minutes", B(r"204 \text{ minutes}"), "204"),
 ("regression", "escaped dollar", B(r"\$80"), "80"),
 ("regression", "power", B("2^5"), "32"),
 ("regression", "cdot product", B(r"3\cdot 25"), "75"),
 ("regression", "frac with bare denominator", B(r"\frac{146}2"), "73"),
 # search_boxed
 ("extract", "last box wins", r"\boxed{72} then \boxed{73}", "73"),
 ("extract", "last box wrong", r"\boxed{73} then \boxed{72}", "73"),
 ("extract", "nested braces", r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
 ("extract", "unbraced box is no answer", r"\boxed 7", "7"),
 ("extract", "fbox is no answer", r"\fbox{7}", "7"),
 ("extract", "unclosed box is no answer", r"\boxed{7", "7"),
 ("extract", "no box", "The answer is 7.", "7"),
 ("extract", "box with space before brace", r"\boxed {7}", "7"),
 # _additional_normalization
 ("additional", "percent sign", B(r"10\%"), "10"),
 ("additional", "bare percent", B("10%"), "10"),
 ("additional", "decimal percent", B(r"12.5\%"), "12.5"),
 ("additional", "trailing period", B("73."), "73"),
 ("additional", "trailing backslash", B("185\\"), "185"),
 ("additional", "percent of a non-number kept", B(r"x\%"), "x"),
 # literal stage
 ("literal", "leading zero is wrong", B("073"), "73"),
 ("literal", "digits with a space", B("2 3"), "23"),
 ("literal", "plain equal", B("73"), "73"),
 ("literal", "plain unequal", B("74"), "73"),
 ("literal", "words", B("odd"), "odd"),
 ("literal", "words unequal", B("odd"), "even"),
 ("literal", "spaces inside", B(" 73 "), "73"),
 # normalize_latex basic_latex
 ("basic", "left right parentheses", B(r"\left( 5 \right)"), "5"),
 ("basic", "left right brackets", B(r"\left[ 5 \right]"), "5"),
 ("basic", "displaystyle", B(r"\displaystyle 5"), "5"),
 ("basic", "dollar signs", B(r"$5$"), "5"),
 ("basic", "dfrac", B(r"\dfrac{1}{3}"), r"\frac{1}{3}"),
 ("basic", "tfrac", B(r"\tfrac{1}{3}"), r"\frac{1}{3}"),
 ("basic", "cfrac", B(r"\cfrac{1}{3}"), r"\frac{1}{3}"),
 ("basic", "braced comma thousands", B(r"1{,}073"), "1073"),
 ("basic", "negative thin space", B(r"1\!073"), "1073"),
 ("basic", "empty text", B(r"73\text{}"), "73"),
 ("basic", "quotes", B("'73'"), "73"),
 ("basic", "mathrm to text", B(r"\mathrm{73}"), "73"),
 ("basic", "textbf to text", B(r"\textbf{73}"), "73"),
 ("basic", "text and", B(r"5 \text{ and } 6"), "5, 6"),
 ("basic", "and word", B("5 and 6"), "5,6"),
 ("basic", "backslash space", B(r"73\ "), "73"),
 ("basic", "ldots", B(r"1, 2, \ldots"), "1, 2"),
 ("basic", "infinity word", B("infinity"), r"\infty"),
 ("basic", "percent word", B("5 percent"), "5"),
 ("basic", "pct word", B("5 pct"), "5"),
 ("basic", "decimal brace", B(r"{.5}"), r"\frac{1}{2}"),
 ("basic", "doubled backslash command", B(r"\\frac{1}{2}"), r"\frac{1}{2}"),
 # spacing commands latex2sympy skips
 ("spacing", "quad", B(r"5\quad"), "5"),
 ("spacing", "qquad", B(r"5 \qquad"), "5"),
 ("spacing", "thin space", B(r"1\,073"), "1073"),
 ("spacing", "medium space", B(r"5\:"), "5"),
 ("spacing", "thick space", B(r"5\;"), "5"),
 # degrees
 ("degree", "circ", B(r"30^\circ"), "30"),
 ("degree", "braced circ", B(r"30^{\circ}"), "30"),
 ("degree", "degrees word", B("30 degrees"), "30"),
 ("degree", "circ wrong value", B(r"31^\circ"), "30"),
 # units
 ("units", "text unit", B(r"7 \text{ cm}"), "7"),
 ("units", "mbox unit", B(r"7 \mbox{ cm}"), "7"),
 ("units", "text unit with superscript", B(r"7\text{cm}^2"), "7"),
 ("units", "bare unit word", B("3 ft"), "3"),
 ("units", "plural unit word", B("3 hours"), "3"),
 ("units", "meters", B("12 meters"), "12"),
 ("units", "text minutes wrong value", B(r"205 \text{ minutes}"), "204"),
 ("units", "dollars text", B(r"80 \text{ dollars}"), "80"),
 ("units", "escaped dollar decimals", B(r"\$10.00"), "10"),
 ("units", "unknown trailing word kept", B("7 apples pie"), "7"),
 # malformed operators
 ("malformed", "frac digits", B(r"\frac12"), r"\frac{1}{2}"),
 ("malformed", "frac digit and brace", B(r"\frac1{2}"), r"\frac{1}{2}"),
 ("malformed", "sqrt digit", B(r"\sqrt4"), "2"),
 ("malformed", "power parenthesis", B("2^(3)"), "8"),
 ("malformed", "sqrt parenthesis", B("sqrt(9)"), "3"),
 ("malformed", "a slash b", B("3/4"), r"\frac{3}{4}"),
 ("malformed", "a slash b unequal", B("3/4"), r"\frac{4}{3}"),
 # nits
 ("nits", "leading point", B(".5"), r"\frac{1}{2}"),
 ("nits", "one half", B("0.5"), r"\frac{1}{2}"),
 # expressions evaluated exactly
 ("expr", "times", B(r"3\times 25"), "75"),
 ("expr", "power braced", B("2^{10}"), "1024"),
 ("expr", "power multi digit", B("2^10"), "1024"),
 ("expr", "power wrong", B("2^5"), "31"),
 ("expr", "parentheses", B(r"(2+3)\cdot 4"), "20"),
 ("expr", "sum of fractions", B(r"\frac{1}{2}+\frac{1}{2}"), "1"),
 ("expr", "double negation", B("-(-5)"), "5"),
 ("expr", "negative power", B("2^{-3}"), "0.125"),
 ("expr", "sqrt perfect square", B(r"\sqrt{16}"), "4"),
 ("expr", "cube root", B(r"\sqrt[3]{27}"), "3"),
 ("expr", "fractional power", B("4^{1/2}"), "2"),
 ("expr", "colon division", B("6:2"), "3"),
 ("expr", "div", B(r"6\div 2"), "3"),
 ("expr", "thousands separator", B("1,000"), "1000"),
 ("expr", "millions separator", B("12,345,678"), "12345678"),
 ("expr", "fraction unequal", B(r"\frac{146}{3}"), "73"),
 ("expr", "power tower", B("2^2^2"), "16"),
 ("expr", "nested power", B("2^{2^{2}}"), "16"),
 ("expr", "frac equals decimal", B(r"\frac{3}{2}"), "1.5"),
 ("expr", "product minus", B(r"2\cdot 50-27"), "73"),
 ("expr", "boxed inside box", B(r"\boxed{5}"), "5"),
 ("expr", "negative fraction", B(r"-\frac{1}{2}"), "-0.5"),
 ("expr", "brackets group", B("[7]"), "7"),
 ("expr", "braces group", B("{7}"), "7"),
 # latex2sympy's mixed-number rule
 ("mixed", "mixed number", B(r"918\frac{1}{2}"), "918.5"),
 ("mixed", "juxtaposed integers add", B("2(3)"), "5"),
 ("mixed", "juxtaposed integers do not multiply", B("2(3)"), "6"),
 ("mixed", "negative mixed number", B(r"-2\frac{1}{2}"), "-2.5"),
 ("mixed", "fraction then integer multiplies", B(r"\frac{1}{2}(4)"), "2"),
 # floats
 ("float", "trailing zeros", B("73.00"), "73"),
 ("float", "close float is not an integer", B("73.0000001"), "73"),
 ("float", "rounds to six places", B("0.333333"), r"\frac{1}{3}"),
 ("float", "too few places", B("0.3333"), r"\frac{1}{3}"),
 ("float", "decimal equals fraction", B("1.50"), r"\frac{3}{2}"),
 ("float", "float sum", B("0.5+0.5"), "1"),
 ("float", "float product", B(r"0.5\cdot 2"), "1"),
 # percent in the symbolic stage
 ("percent", "spaced percent", B(r"73 \%"), "73"),
 ("percent", "spaced percent as fraction", B(r"50 \%"), r"\frac{1}{2}"),
 ("percent", "percent is not its fraction", B(r"5\%"), "0.05"),
 # sets
 ("sets", "order ignored", B("2,1"), "1,2"),
 ("sets", "braces set", B(r"\{1,2\}"), "1,2"),
 ("sets", "different elements", B("1,3"), "1,2"),
 ("sets", "duplicates", B("1,2,2"), "1,2"),
 ("sets", "set vs number", B("1,2"), "1"),
 ("sets", "semicolon", B("2; 1"), "1,2"),
 ("sets", "fraction element", B(r"\frac{1}{2}, 3"), "3, 0.5"),
 # symbols
 ("symbol", "text number", B(r"\text{73}"), "73"),
 ("symbol", "text number with leading zero", B(r"\text{073}"), "73"),
 ("symbol", "text fraction", B(r"\text{3/2}"), "3/2"),
 # equations
 ("equation", "assignment", B("n=73"), "73"),
 ("equation", "assignment of expression", B("x = 2^5"), "32"),
 ("equation", "sum on the left", B("m+n=73"), "73"),
 ("equation", "chain", B("a=b=73"), "73"),
 ("equation", "assignment wrong", B("x=72"), "73"),
 # outside the evaluated subset
 ("outside", "symbol vs number", B("x"), "73"),
 ("outside", "pi vs decimal", B(r"\pi"), "3.14"),
 ("outside", "same expression string", B(r"2\pi"), r"2\pi"),
 ("outside", "sqrt 2 vs decimal", B(r"\sqrt{2}"), "1.414"),
 ("outside", "interval strings", B("(1,2)"), "(1,2)"),
 ("outside", "irrational squared", B(r"\sqrt{2}^2"), "2"),
 ("outside", "factorial", B("3!"), "6"),
 ("outside", "polynomial", B("x^2+2x+1"), "(x+1)^2"),
 ("outside", "e notation", B("1E3"), "1000"),
]
# Pairs from NeMo-Skills tests/test_math_equal.py (both orders), graded as
# math_equal(gold, pred) directly.
nemo_tests_true = [(5, 5), (5, 5.0), ("1/2", 0.5), ("\\frac{1}{2}", 0.5), ("918\\frac{1}{2}", 918.5),
 ("x^2+2x+1", "x^2 + 2*x + 1"), ("x^2+2x+1", "x^2 + 2*x - (-1)"), ("y = x^2+2x+1", "2x+ 1+x^2"),
 ("E", "\\mathrm{E}"), ("A", "\\textbf{A}"), ("f'", "f'"), ("185", "185\\"), ("185\\", "185\\"),
 (".185", "0.185"), ("\\frac {1}{2}", 0.5), ("17\\text{ any text}", "17"), ("\\$10", "10"),
 ("10%", "10"), ("10\\%", "10"), (5 / 2, "\\frac{5}{2}"), ("\\frac{1}{3}", "\\dfrac{1}{3}"),
 ("(r+5)(r+5)", "(r+5)^2"), ("\\frac{\\sqrt{3}}{3}", "\\frac{\\sqrt{3}}{3} \\approx 0.577"),
 ("\\begin{pmatrix}0&0&0\\\\0&1&0\\\\0&0&1\\end{pmatrix}", "\\begin{bmatrix} 0 & 0 & 0 \\\\ 0 & 1 & 0 \\\\ 0 & 0 & 1 \\end{bmatrix}")]
nemo_tests_false = [(5, 5.001), ("x^2+2x+1", "x^3+2x+1"), ("odd", "\\text{oddd}"), ("E", "\\mathrm{E}*2"), ("\\sqrt{67},-\\sqrt{85}", "\\sqrt{67}")]

grading = []
for rule, case, response, gold in cases:
    extracted = extract_answer(response)
    grading.append({"rule": rule, "case": case, "response": response, "gold": gold,
                    "extracted": extracted, "correct": bool(math_equal(gold, extracted))})
for i, (a, b) in enumerate(nemo_tests_true + nemo_tests_false):
    for g, p in [(a, b), (b, a)]:
        grading.append({"rule": "nemo_test_math_equal", "case": f"test_math_equal pair {i}",
                        "response": None, "gold": str(g), "extracted": str(p),
                        "correct": bool(math_equal(str(g), str(p)))})

norm_inputs = sorted({c["extracted"] for c in grading if c["extracted"] is not None} | {c["gold"] for c in grading} | {
    r"\boxed{1} and \boxed{2}", r"\fbox{3}", r"\boxed{\boxed{4}}", r"a \boxed 5", r"\mathrm{T}", r"\mathrm{d}x", r"{\rm d}x",
    r"\left[\begin{matrix}1\end{matrix}\right]", r"(n)_{k}", r"\text{ percentage }", r"inf", r"x ~= 2",
    r"1, and 2", r"a \text{ or } b", r"\log_2 8", r"\frac 3 4", r"5\text{ m}^2", r"\text{x} \text{ cm}", "12 sq m", "5 s .",
    r"\lfloor x \rfloor", r"\left\{ 1 \right\}", "\\frac{1}{2}\n3", "a\tb", r"\sqrt 3 x", r"2^ (x+1)", "-3/4", "03/4", "3/-4", "1/2/3",
})
normalization = [{"input": s, "nemo_literal": normalize_latex(s, NormalizationConfig),
                  "math_verify": normalize_latex(s, FULL)} for s in norm_inputs]

out = {
    "provenance": {
        "generator": "scripts/gen_math_nemo_vectors.py (run outside the repository with the packages below)",
        "nemo_skills": "NVIDIA/NeMo-Skills@0b012df8 nemo_skills/evaluation/math_grader.py (extract_answer, math_equal), verbatim",
        "math_verify": md.version("math-verify"),
        "latex2sympy2_extended": md.version("latex2sympy2_extended"),
        "sympy": md.version("sympy"),
        "antlr4_python3_runtime": md.version("antlr4-python3-runtime"),
        "python": sys.version.split()[0],
        "fields": "grading: correct = math_equal(gold, extracted), extracted = extract_answer(response) (response null: extracted given directly); normalization: normalize_latex(input, NormalizationConfig) and normalize_latex(input, LatexExtractionConfig().normalization_config)",
    },
    "grading": grading,
    "normalization": normalization,
}
json.dump(out, open(sys.argv[2], "w"), indent=1, ensure_ascii=False)
print(len(grading), len(normalization))
