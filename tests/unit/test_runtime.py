"""meta/runtime.yml: every module is in the ``all`` action group, and every member of a connection group documents
every option of that group's doc fragment (so ``module_defaults: group/mcp.platform.<kind>`` is accepted by all)."""

import os

import yaml

from ansible_collections.mcp.platform.plugins.doc_fragments import docker as docker_fragment
from ansible_collections.mcp.platform.plugins.doc_fragments import postgres as postgres_fragment
from ansible_collections.mcp.platform.plugins.doc_fragments import s3 as s3_fragment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME = yaml.safe_load(open(os.path.join(ROOT, "meta", "runtime.yml")))
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "plugins", "modules")) if f.endswith(".py") and f != "__init__.py")
FRAGMENTS = {"docker": docker_fragment, "postgres": postgres_fragment, "s3": s3_fragment}


def module_doc(name):
    """The module's DOCUMENTATION (without running it): its own options and the fragments it extends."""
    text = open(os.path.join(ROOT, "plugins", "modules", name + ".py")).read()
    return yaml.safe_load(text.split('DOCUMENTATION = r"""', 1)[-1].split("DOCUMENTATION = r'''", 1)[-1].split('"""', 1)[0]
                          .split("'''", 1)[0])


def test_every_module_is_in_the_all_group():
    assert sorted(RUNTIME["action_groups"]["all"]) == MODULES


def test_connection_groups_hold_only_modules_that_take_the_whole_vocabulary():
    for group, fragment in FRAGMENTS.items():
        members = RUNTIME["action_groups"][group]
        assert members, group
        options = set(yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"])
        for module in members:
            assert module in MODULES, (group, module)
            assert "mcp.platform.%s" % group in module_doc(module)["extends_documentation_fragment"], (group, module)
        assert options, group


def test_modules_extending_a_connection_fragment_are_in_its_group():
    for module in MODULES:
        for fragment in module_doc(module).get("extends_documentation_fragment") or []:
            kind = fragment.split(".")[-1]
            if kind in FRAGMENTS:
                assert module in RUNTIME["action_groups"][kind], (module, kind)
