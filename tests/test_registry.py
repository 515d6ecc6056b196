"""The method registry (lth.plan.registry): each family declares itself once in
lth.plan.families, and what lists methods (groups, controls, rules, the names a config
may not take, the config checks) is derived from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lth.plan import config_checks, registry
from lth.report import style


def test_families_are_found_in_their_declared_order_with_distinct_names_and_rules():
    families = registry.families()
    names = [f.name for f in families]
    assert names == ["imp", "at_init", "finetune", "filters", "earlybird", "supermask",
                     "reintroduce", "elastic"]
    rules = registry.rules()
    assert len(rules) == len(set(rules))
    labels = registry.method_labels()
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("folder,family,group,control", [
    ("imp", "imp", "lottery", False),
    ("reinit_draw3", "imp", "control", True),
    ("scratch_b_imp", "imp", "control", True),
    ("scratch_e_finetune", "finetune", "control", True),
    ("finetune", "finetune", "baseline", False),
    ("earlybird_scratch_rest", "earlybird", "earlybird", False),
    ("gem_miner_gem", "supermask", "supermask", False),
    ("regrow_random_scored", "reintroduce", "reintroduce", True),
    ("elastic_tail_randmask", "elastic", "control", True),
    ("elastic_interleave", "elastic", "elastic", False),
])
def test_a_run_folder_names_its_family_group_and_whether_it_is_a_control(folder, family,
                                                                           group, control):
    found_family, method = registry.method_of(folder)
    assert (found_family.name, method.group, method.control) == (family, group, control)
    assert registry.is_control(folder) is control
    assert registry.family_of(folder) == family


@pytest.mark.parametrize("folder", ["snip", "my_criterion", "reinit_drawx", "imp2"])
def test_a_configured_method_belongs_to_no_family(folder):
    assert registry.method_of(folder) is None
    assert registry.is_control(folder) is False


def test_a_method_in_a_group_no_family_declares_is_refused():
    stray = registry.Family("stray", 99, "a test family",
                            methods=(registry.Method("mine", "tickets"),))
    with pytest.raises(ValueError, match="group 'tickets' is not one of"):
        registry.in_order([*registry.families(), stray])


def test_the_groups_are_declared_by_the_families_in_their_order():
    assert registry.group_names() == ("lottery", "control", "at_init", "baseline", "earlybird",
                                      "supermask", "reintroduce", "elastic")


def test_every_group_is_drawn_apart_from_the_others():
    looks = [(style.FAMILY_LINESTYLE[g], style.FAMILY_MARKER[g]) for g in registry.group_names()]
    assert len({str(look) for look in looks}) == len(looks)
    assert set(style.FAMILY_MARKER) == set(registry.group_names())


def test_the_config_check_runs_the_general_checks_then_each_familys_in_order():
    checks = config_checks.experiment_checks()
    assert checks[:len(config_checks.GENERAL_CHECKS)] == config_checks.GENERAL_CHECKS
    owned = [c for f in registry.families() for c in f.checks]
    assert list(checks[len(config_checks.GENERAL_CHECKS):]) == owned
    assert (*registry.rules(), "figures") == config_checks.RULE_NAMES


def test_the_registry_is_torch_free():
    code = ("import sys; from lth.plan import config_checks, registry; registry.families(); "
            "print(sorted(m for m in ('torch', 'snakemake') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

