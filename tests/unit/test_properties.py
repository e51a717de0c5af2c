"""serving.properties: Java-properties syntax, LMI's keys, and the round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmi_deploy.errors import ConfigError
from lmi_deploy.options.properties import parse_properties, read_properties, render_properties
from tests.seed_templates import seed_properties

SEED_TEMPLATE = seed_properties()


def test_seed_template_parses() -> None:
    parsed = parse_properties(SEED_TEMPLATE)
    assert parsed.options == {
        "engine": "Python",
        "tensor_parallel_degree": "max",
        "model_id": "mistralai/Mistral-7B-v0.1",
        "max_rolling_batch_size": "64",
        "rolling_batch": "vllm",
    }


def test_java_properties_syntax() -> None:
    text = (
        "# a comment\n"
        "! another comment\n"
        "\n"
        "   option.max_model_len : 4096\n"
        "option.dtype bf16\n"
        "option.chat_template={{ a }}\\\n"
        "    {{ b }}\n"
        "option.revision=tab\\there\\u0041\n"
        "option.model_id = s3://bucket/prefix/  \n"
    )
    options = parse_properties(text).options
    assert options["max_model_len"] == "4096"
    assert options["dtype"] == "bf16"
    assert options["chat_template"] == "{{ a }}{{ b }}"
    assert options["revision"] == "tab\thereA"
    assert options["model_id"] == "s3://bucket/prefix/"


def test_djl_worker_settings_are_accepted_and_reported_as_ignored() -> None:
    parsed = parse_properties("engine=Python\nmaxWorkers=2\njob_queue_size=100\n")
    assert parsed.ignored == {"maxWorkers": "2"}
    assert parsed.options == {"engine": "Python", "job_queue_size": "100"}


def test_unknown_top_level_key_names_line_key_and_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_properties("engine=Python\nmax_rolling_batch_size=64\n", source="my.properties")
    message = str(caught.value)
    assert "my.properties line 2" in message
    assert "'max_rolling_batch_size'" in message
    assert "option.max_rolling_batch_size" in message


def test_empty_option_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="empty option name"):
        parse_properties("option.=3\n")


def test_unreadable_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_properties(tmp_path / "missing.properties")


_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(lambda n: n != "engine")
_values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(st.dictionaries(_names, _values, max_size=8))
def test_render_then_parse_round_trips(options: dict[str, str]) -> None:
    parsed = parse_properties(render_properties({"engine": "Python", **options}))
    assert parsed.options == {"engine": "Python", **options}
