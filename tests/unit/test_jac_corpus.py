"""A Jac codebase becomes training pairs: each `by llm()` call with literal arguments, its prompt
exactly as MTLLM 0.3.2 sends it (compared with what the real MTLLM sent for the fixture corpus),
and a value of the declared type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors import jac_corpus, jac_source
from gateway.store import Store
from tests.support.cli import loragate

FIXTURES = Path(__file__).parents[1] / "fixtures" / "jac"
CORPUS = FIXTURES / "corpus"


def sent_by_mtllm() -> dict[str, list[str]]:
    """The prompts the real MTLLM sent running each corpus program, in call order."""
    sent: dict[str, list[str]] = {}
    for line in (FIXTURES / "recorded" / "asks.jsonl").read_text().splitlines():
        row = json.loads(line)
        sent.setdefault(row["file"], []).append(row["messages"][0]["content"])
    return sent


def unordered_explanations(prompt: str) -> tuple[str, frozenset[str]]:
    """MTLLM lists the types an object's fields use from a `set`, in an order that changes
    between runs (string hashing is randomised): the prompt with those lines taken out, and
    the lines."""
    head, rest = prompt.split("[Type Explanations]\n", 1)
    lines, tail = rest.split("\n\n[Action]", 1)
    return head + tail, frozenset(lines.splitlines())


def test_every_call_site_renders_the_prompt_mtllm_sends_byte_for_byte() -> None:
    sent = sent_by_mtllm()
    files = sorted(CORPUS.glob("*.jac"))
    assert len(files) == len(sent) == 35
    exact = 0
    for path in files:
        module = jac_source.read_module(path)
        ran = [c for c in module.calls if not jac_source.known(c.expected)]  # `with entry` calls
        rendered = [jac_source.render(c, module) for c in ran]
        assert list(map(unordered_explanations, rendered)) == list(
            map(unordered_explanations, sent[path.name])
        ), path.name
        exact += sum(a == b for a, b in zip(rendered, sent[path.name], strict=True))
    assert exact >= 250  # all but some of those with two nested types, byte for byte


def test_definitions_are_read_with_their_semstrings_and_types() -> None:
    module = jac_source.read_module(CORPUS / "people.jac")
    person = module.archetypes["Person"]
    assert (person.kind, person.semstr) == ("obj", "A person")
    assert person.fields == [("name", "Full name", "str"), ("age", "Age in years", "int"),
                             ("employer", "Where they work", "Employer")]  # fmt: skip
    ability = module.abilities["read_person"]
    assert (ability.semstr, ability.output_semstr, ability.output_type) == (
        "Read a person from a description",
        "The person described",
        "Person",
    )
    assert ability.params == [("text", "Free text about someone")]
    assert ability.incl_info == ["known_cities"]
    assert module.globs["known_cities"].value == ["Colombo", "Oslo", "Lagos"]
    checked = {c.source: c.expected for c in module.calls if jac_source.known(c.expected)}
    assert checked == {'age_of("Ann turned 31 last week.")': 31,
                       'age_of("Grandpa is 80 today.")': 80}  # fmt: skip
    tickets = jac_source.read_module(CORPUS / "tickets.jac")
    assert tickets.archetypes["Priority"].members[2] == ("URGENT", "production is down")


def test_calls_it_cannot_know_are_left_out(tmp_path: Path) -> None:
    program = tmp_path / "mixed.jac"
    program.write_text(
        "import:py from mtllm.llms, OpenAI;\nglob llm = OpenAI();\n"
        "glob hidden: 'Computed' = compute();\n"
        "#* a block comment with an 'unclosed quote\n*#\n"
        "can 'Size' size(x: str) -> int by llm();\n"
        "can 'Secret' secret(x: str) -> int by llm(incl_info=(hidden));\n"
        "can 'Why' why(x: str) -> str by llm(method='Reason');\n"
        "can plain(x: str) -> int { return 1; }\n"
        "with entry { name = input(); size(name); size('known'); secret('a'); why('b');"
        " plain('c'); }\n"
    )
    report = jac_corpus.Report(tmp_path)
    sites = jac_corpus.sites_of(tmp_path, report)
    assert [(s.ability, s.call) for s in sites] == [("size", "size('known')")]
    assert report.not_rendered == {"incl_info 'hidden' is not a literal glob": 1,
                                   "method Reason": 1}  # fmt: skip


def test_a_file_that_does_not_read_is_reported_and_the_rest_still_count(tmp_path: Path) -> None:
    shutil_copy(CORPUS / "words.jac", tmp_path / "words.jac")
    (tmp_path / "broken.jac").write_text("can 'x' f(a: str) -> int by llm();\nwith entry { f('")
    report = jac_corpus.Report(tmp_path)
    assert len(jac_corpus.sites_of(tmp_path, report)) == 9
    assert report.unreadable == ["broken.jac"]


def shutil_copy(source: Path, target: Path) -> None:
    target.write_bytes(source.read_bytes())


def test_collect_stores_checked_values_as_the_jac_workload_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = loragate(home, "collect", "jac", str(CORPUS), "--checks-only")
    assert first.returncode == 0, first.stderr
    assert "264 call sites with literal arguments, 0 done before" in first.stdout
    assert "from checks: 50 kept, 0 not of the declared type" in first.stdout
    store = Store(home / "store.db")
    rows = store.query("SELECT i.workload, i.kind, i.conversation_id, i.response_text, o.kind, "
                       "o.value, o.detail FROM interactions i JOIN outcomes o "
                       "ON o.interaction_id = i.id WHERE i.conversation_id LIKE '%people.jac' "
                       "AND o.source = 'jac_corpus'")  # fmt: skip
    assert sorted(tuple(r) for r in rows) == [
        ("jac", "synthetic", "jac:corpus:people.jac", "[Output] 31", "type_valid", 1.0,
         "people.jac:44 check"),
        ("jac", "synthetic", "jac:corpus:people.jac", "[Output] 80", "type_valid", 1.0,
         "people.jac:45 check"),
    ]  # fmt: skip
    store.close()
    again = loragate(home, "collect", "jac", str(CORPUS), "--checks-only")
    assert "50 done before" in again.stdout and "from checks: 0 kept" in again.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["/nowhere"], "loragate: error: /nowhere is neither a folder nor a .jac file"),
        ([str(CORPUS), "--concurrency", "0"], "--concurrency must be 1 or more"),
        ([str(CORPUS), "--url", "http://127.0.0.1:9/v1"],
         "loragate: error: nothing answers at http://127.0.0.1:9/v1"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_line(tmp_path: Path, args: list[str], error: str) -> None:
    done = loragate(tmp_path / "home", "collect", "jac", *args)
    assert done.returncode != 0 and error in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_models_values_that_loop_or_paste_an_argument_are_poor(tmp_path: Path) -> None:
    report = jac_corpus.Report(tmp_path)
    sites = {s.call: s for s in jac_corpus.sites_of(CORPUS / "colours.jac", report)}
    colours = sites['colours_in("The sky was grey.")']
    assert jac_corpus.judged(colours, '["grey"]', "model").status == "kept"
    pasted = jac_corpus.judged(colours, '["The sky was grey."]', "model")
    assert (pasted.status, pasted.reason) == ("poor", "pastes the argument 'The sky was grey.'")
    counted = sites['count_colours("The red car passed a blue house.")']
    assert jac_corpus.judged(counted, "100000000", "model").reason == "repeats itself"
    assert jac_corpus.judged(counted, "two", "model").status == "invalid"
    assert jac_corpus.judged(counted, "100000000", "check").status == "kept"  # a check is kept
    named = sites['colour("teal")']  # a name, not a sentence: the value may repeat it
    assert jac_corpus.judged(named, 'Colour(name="teal", hex="#008080", warm=False)',
                             "model").status == "kept"  # fmt: skip
