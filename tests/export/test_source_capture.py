"""Finding class source and the code it needs: cells, magics, history, files."""

from __future__ import annotations

import pytest

from luthien_lab import ExportError, SimplePolicy, UppercasePolicy
from luthien_lab.exporting import find_class_source
from luthien_lab.exporting._module import build_module, class_definitions, require_resolved
from luthien_lab.exporting._source import python_of_cell

CLASS = """class P(SimplePolicy):
    async def on_response_content(self, content, request):
        response = shout(content)
        return response
"""


def test_cell_magic_bodies_are_unwrapped_and_line_magics_translated():
    assert python_of_cell("%%policy\nclass A:\n    pass\n").strip() == "class A:\n    pass"
    translated = python_of_cell("%load_ext luthien_lab\nX = 1\n")
    assert "get_ipython()" in translated and "X = 1" in translated
    assert python_of_cell("%%bash\nls -la | wc -l\n") is None
    assert python_of_cell("def broken(:\n") is None


def test_method_locals_never_pull_in_notebook_globals_of_the_same_name():
    cells = [
        "import re\nimport json\nfrom luthien_lab import SimplePolicy, NoOpPolicy",
        "LOUD = '!'\ndef shout(text):\n    return re.sub('a', 'A', text) + LOUD",
        "response = await orchestrator.process_full_response(req)\ncontent = 'x'",
    ]
    parts = build_module(cells, "P", CLASS)
    require_resolved(parts, "P")
    assert parts.imports == ["import re", "from luthien_lab import SimplePolicy"]
    assert parts.helpers == ["LOUD", "shout"]
    assert "await" not in parts.text and "json" not in parts.text
    namespace: dict = {}
    exec(compile(parts.text, "<exported>", "exec"), namespace)
    assert namespace["shout"]("banana") == "bAnAnA!"


def test_the_last_definition_of_a_helper_wins_and_comes_before_its_users():
    cells = [
        "from luthien_lab import SimplePolicy\ndef shout(t):\n    return t",
        CLASS,
        "def shout(t):\n    return t.upper() + SUFFIX",
        "SUFFIX = '?'",
    ]
    parts = build_module(cells, "P", class_definitions(cells, "P")[-1][1])
    assert parts.text.count("def shout") == 1 and "t.upper()" in parts.text
    namespace: dict = {}
    exec(compile(parts.text, "<exported>", "exec"), namespace)
    assert namespace["shout"]("a") == "A?"


def test_base_classes_from_luthien_lab_are_imported_even_when_no_cell_imports_them():
    parts = build_module(["def shout(t):\n    return t"], "P", CLASS)
    assert "from luthien_lab import SimplePolicy" in parts.imports


def test_live_modules_and_literal_constants_fill_names_no_cell_defines():
    import json

    cls = "class P(SimplePolicy):\n    def f(self):\n        return js.dumps(LIMITS), shout\n"
    namespace = {"js": json, "LIMITS": {"a": [1, 2]}, "shout": print}
    parts = build_module([], "P", cls, namespace=namespace)
    assert "import json as js" in parts.imports
    assert "LIMITS = {'a': [1, 2]}" in parts.text
    # print's home is builtins: not importable under another name, so unresolved
    assert parts.unresolved == ["shout"]
    with pytest.raises(ExportError, match=r"cannot export P: it uses shout.*%%policy"):
        require_resolved(parts, "P")


def test_a_class_with_no_source_anywhere_fails_naming_the_class_and_the_fix():
    Ghost = type("Ghost", (SimplePolicy,), {})
    with pytest.raises(ExportError) as caught:
        find_class_source(Ghost)
    message = str(caught.value)
    assert "Ghost" in message and "%%policy" in message and ".py file" in message


def test_classes_defined_in_files_use_inspect():
    source = find_class_source(UppercasePolicy)
    assert source.origin == "file"
    assert source.class_source.startswith("class UppercasePolicy(SimplePolicy):")
    parts = build_module(source.cells, "UppercasePolicy", source.class_source)
    require_resolved(parts, "UppercasePolicy")
    # the TYPE_CHECKING import of Request is lifted: the annotation still resolves
    assert "from luthien_lab.request import Request" in parts.imports
    assert "from luthien_lab.policies.simple import SimplePolicy" in parts.imports
