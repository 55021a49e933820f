"""Workload Modelfiles: the shared tool-aware TEMPLATE, each workload's own settings on top."""

from __future__ import annotations

from gateway.versions.ollama_tags import Modelfile, modelfile_for


def test_continue_decodes_greedily_with_the_shared_template() -> None:
    shared, mine = modelfile_for("*"), modelfile_for("continue")
    assert mine.template == shared.template and "<tool_call>" in (mine.template or "")
    assert mine.parameters == {
        "stop": ["<|im_end|>", "<|im_start|>"], "num_ctx": 8192, "temperature": 0, "top_p": 0.9,
        "repeat_penalty": 1.1,
    }  # fmt: skip


def test_jessy_brings_its_own_system_prompt_and_conversational_sampling() -> None:
    jessy = modelfile_for("jessy")
    assert jessy.template == modelfile_for("*").template
    assert (jessy.system or "").startswith("You are JESSY")
    assert jessy.parameters["temperature"] == 0.7 and jessy.parameters["num_ctx"] == 4096
    again = Modelfile.parse(jessy.render("./model.gguf"))
    assert again == jessy  # what is deployed reads back the same


def test_a_workload_without_a_modelfile_gets_the_shared_one() -> None:
    assert modelfile_for("byllm") == modelfile_for("*")
