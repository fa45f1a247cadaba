"""Security gates on the source (issue 12, item 5): no eval/exec, and secrets are never compared
with `==`/`!=` (timing leaks) — signatures, HMACs, digests, tokens and secrets go through
`hmac.compare_digest` / `secrets.compare_digest`.

A static walk over the app code with `ast`: cheap (well under a second) and runs in `make test`.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("apps", "loyalnest", "scripts")

SECRET_NAME = re.compile(r"signature|hmac|digest|token|secret|(?:^|_)sig(?:$|_)", re.IGNORECASE)

# Comparisons the name rule flags that compare no secret, each by (file, source of the comparison).
# Keep the reason: an entry without one is a review failure.
ALLOWED_COMPARISONS = {
    ("apps/shopify/metafields/sync.py", "copy.compare_digest != have.digest"): (
        "`compareDigest` is Shopify's metafield version stamp (optimistic concurrency): public, not a MAC"
    ),
    ("apps/wallet/services.py", "device.push_token != push_token"): (
        "the device's APNs push address, compared to decide whether to store a new one, after the "
        "pass itself was authenticated with secrets.compare_digest (passkit_authenticate)"
    ),
    ("loyalnest/settings/production.py", "SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY"): (
        "refuses the public dev default at start-up; no request input is compared"
    ),
}


def _python_files():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            yield path


def _names(node) -> list[str]:
    """The identifiers an expression is 'about': `a.b.token` → [a, b, token]; a call → its callee."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [*_names(node.value), node.attr]
    if isinstance(node, ast.Call):
        return _names(node.func)
    if isinstance(node, ast.Subscript):
        key = node.slice
        extra = [key.value] if isinstance(key, ast.Constant) and isinstance(key.value, str) else []
        return [*_names(node.value), *extra]
    if isinstance(node, ast.Await):
        return _names(node.value)
    return []


def _literal(node) -> bool:
    """A comparison with a literal leaks no secret: there is nothing secret on the other side
    (`token is None`-style checks, `kind == "offline"`)."""
    return isinstance(node, ast.Constant) or (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant))


def _is_call_to(node, names) -> bool:
    func = node.func
    return (isinstance(func, ast.Name) and func.id in names) or (
        isinstance(func, ast.Attribute) and func.attr in names and _names(func.value) == ["builtins"]
    )


def scan(source: str, filename: str) -> list[str]:
    findings = []
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_call_to(node, {"eval", "exec"}):
            findings.append(f"{filename}:{node.lineno}: {ast.unparse(node.func)}() call")
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                if not isinstance(op, ast.Eq | ast.NotEq) or _literal(left) or _literal(right):
                    continue
                hit = [n for n in _names(left) + _names(right) if SECRET_NAME.search(n)]
                if not hit:
                    continue
                text = ast.unparse(node)
                if (filename, text) in ALLOWED_COMPARISONS:
                    continue
                findings.append(
                    f"{filename}:{node.lineno}: `{text}` compares {hit[0]!r} with ==/!=; use hmac.compare_digest"
                )
    return findings


def test_no_eval_and_no_plain_comparison_of_secrets():
    findings = []
    for path in _python_files():
        findings += scan(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not findings, "\n".join(findings)


def test_every_allowed_comparison_still_exists_and_has_a_reason():
    """A stale allow-list entry would silently allow the next comparison written the same way."""
    for (filename, text), reason in ALLOWED_COMPARISONS.items():
        assert reason.strip(), f"{filename}: give a reason"
        tree = ast.parse((ROOT / filename).read_text(encoding="utf-8"))
        found = {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Compare)}
        assert text in found, f"{filename}: `{text}` is gone; drop it from ALLOWED_COMPARISONS"


@pytest.mark.parametrize(
    "source",
    [
        "eval(user_input)",
        "exec(code)",
        "builtins.eval(x)",
        "ok = received_hmac == expected",
        "if signature != computed: pass",
        "if request.headers['X-Shopify-Hmac-Sha256'] == calc: pass",
        "if hmac.new(k, b, h).hexdigest() == given: pass",
        "if payload['token'] == stored.access_token: pass",
        "if a == b == webhook_secret: pass",
    ],
)
def test_the_check_catches(source):
    assert scan(source, "x.py"), source


@pytest.mark.parametrize(
    "source",
    [
        "hmac.compare_digest(received, expected)",
        "token_type == 'offline'",
        "if access_token == '': pass",
        "if token is None: pass",
        "if len(token) == 64: pass",
        "model.objects.evaluate(x)",
        "if kind == other_kind: pass",
    ],
)
def test_the_check_allows(source):
    assert not scan(source, "x.py"), source
