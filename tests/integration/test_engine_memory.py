"""The engine's memory: its RAM cache of conversation states holds no more than its capacity,
counting every byte it keeps, and a state it brings back still answers exactly as before; an
answer allowed to run to the end of the context finishes with `length`, never a full KV cache."""

from __future__ import annotations

from gateway.backends.embedded import default_model_path
from gateway.backends.llamacpp import UTF8_SLACK, LlamaCppBackend
from gateway.generation import Assembled, GenerationRequest


def ask(question: str) -> GenerationRequest:
    system = "You are a careful assistant. " + "Answer in one short sentence. " * 40
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return GenerationRequest(model="m", messages=messages, max_tokens=8, temperature=0)


async def answer(engine: LlamaCppBackend, request: GenerationRequest) -> Assembled:
    assembled = Assembled()
    async for event in engine.generate(request):
        assembled.add(event)
    return assembled


async def test_the_prompt_cache_stays_within_its_capacity_and_restores_exactly() -> None:
    engine = LlamaCppBackend(default_model_path(), n_ctx=1024, n_threads=None, n_batch=256,
                             cache_mb=4)  # fmt: skip
    await engine.start()
    try:
        first = await answer(engine, ask("Name one colour."))
        for i in range(30):  # each state once held ~8 MB of logits the cache did not count
            await answer(engine, ask(f"Question {i}: name one animal."))
            cache = engine._llm.cache
            assert cache.cache_size <= 4 << 20
            assert all(s.scores.shape[0] == 1 for s in cache.cache_state.values())
        again = await answer(engine, ask("Name one colour."))
        assert again.text == first.text
        assert again.finish is not None and again.finish.cached_tokens > 200  # the shared prefix
    finally:
        await engine.close()


async def test_an_answer_without_a_limit_stops_short_of_the_end_of_the_context() -> None:
    """llama-cpp-python generates past its limit while the text ends inside a UTF-8 character:
    at the end of the context that extra token found no KV slot and the request failed (500)."""
    engine = LlamaCppBackend(default_model_path(), n_ctx=256, n_threads=None, n_batch=64,
                             cache_mb=0)  # fmt: skip
    await engine.start()
    try:
        essay = [{"role": "user", "content": "Write a very long essay about the sea."}]
        for limit in (None, 5000):
            request = GenerationRequest(model="m", messages=essay, max_tokens=limit,
                                        temperature=0)  # fmt: skip
            done = (await answer(engine, request)).finish
            assert done is not None and done.reason == "length"
            assert done.prompt_tokens + done.completion_tokens == 256 - UTF8_SLACK
    finally:
        await engine.close()
