"""Site forms, kinds and value recipes: the enums the locator, the templates and mutation share."""

from __future__ import annotations

import re

from scaffold.resources import template_root
from scaffold.testgen.model import Recipe, Shape, Site, SiteKind, form, split_form


def test_a_form_is_its_shape_and_target_and_reads_back_as_them():
    written = form(Shape.TRY_FINALLY, "token")
    site = Site(SiteKind.TOKEN, written, "a.py", "a", 3, 5, "token = attach(ctx)", "a.f")

    assert written == "try-finally:token"
    assert split_form(written) == (Shape.TRY_FINALLY, "token")
    assert (site.shape, site.target) == (Shape.TRY_FINALLY, "token")
    assert split_form(form(Shape.WITH, "consume_span")) == (Shape.WITH, "consume_span")


def test_the_value_macro_renders_every_recipe_and_only_those():
    """Each recipe but ``recorder`` (the macro's fallback) has its own branch in the template."""
    macro = (template_root() / "templates/testgen/test_module.py.jinja").read_text()
    branches = set(re.findall(r'v\.recipe == "([a-z]+)"', macro))

    assert branches == {recipe.value for recipe in Recipe} - {Recipe.RECORDER.value}


def test_kinds_and_recipes_compare_as_the_strings_the_templates_test():
    assert SiteKind.CONSUME == "consume" and f"{SiteKind.THREAD}" == "thread"
    assert Recipe.BUILD == "build" and f"{Recipe.POISON}" == "poison"
