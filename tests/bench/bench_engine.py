"""The embedded engine through the gateway, against llama-cpp-python called directly.

Prints, measured in one run on the default model (SmolLM2-135M-Instruct Q4_1):
  - decode tokens/s through the gateway (streamed, openai SDK) and direct, and their ratio;
  - time to first token of turn 1 and turn 2 of a ~2,000-token agent conversation shaped like
    the Continue CLI's (long system prompt + tool schemas), and their ratio.

    python tests/bench/bench_engine.py [--tokens 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from gateway.backends.embedded import default_model_path
from tests.support.servers import gateway

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def agent_tools(n: int = 11) -> list[dict]:
    names = [
        "Read",
        "Write",
        "List",
        "Bash",
        "Fetch",
        "Checklist",
        "CheckBackgroundJob",
        "AskQuestion",
        "Edit",
        "Exit",
        "Skills",
    ][:n]
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": f"{name}: " + "Use this tool carefully and only when needed. " * 12,
                "parameters": {
                    "type": "object",
                    "properties": {
                        "path": {
                            "type": "string",
                            "description": "Path relative to the workspace root",
                        },
                        "content": {"type": "string", "description": "Text to write or run"},
                    },
                    "required": ["path"],
                },
            },
        }
        for name in names
    ]


SYSTEM = "You are an agent working in a terminal. " + "Follow the project rules. " * 40


def direct_decode_rate(tokens: int, runs: int) -> float:
    from llama_cpp import Llama

    from gateway.generation import GenerationRequest
    from gateway.prompts.rendering import PromptStyle, build_prompt

    llm = Llama(
        model_path=str(default_model_path()),
        n_ctx=4096,
        n_threads=os.cpu_count(),
        n_batch=256,
        verbose=False,
    )
    style = PromptStyle.for_model(llm.metadata.get("tokenizer.chat_template"))
    text = build_prompt(GenerationRequest(model="m", messages=PROMPT), style)
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    rates = []
    for _ in range(runs):
        llm.reset()
        first = last = None
        count = 0
        for _chunk in llm.create_completion(ids, max_tokens=tokens, temperature=0, stream=True):
            now = time.perf_counter()
            first = first or now
            last = now
            count += 1
        rates.append((count - 1) / (last - first))
    llm.close()
    return statistics.median(rates)


def gateway_decode_rate(client: openai.OpenAI, tokens: int, runs: int) -> float:
    rates = []
    for run in range(runs):
        first = last = None
        count = 0
        stream = client.chat.completions.create(
            model="auto",
            messages=[*PROMPT, {"role": "user", "content": f"Take {run}."}][:1],
            max_tokens=tokens,
            temperature=0,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                now = time.perf_counter()
                first = first or now
                last = now
                count += 1
        rates.append((count - 1) / (last - first))
    return statistics.median(rates)


def time_to_first_token(client: openai.OpenAI, messages: list[dict]) -> tuple[float, str]:
    started = time.perf_counter()
    ttft, text = None, ""
    for chunk in client.chat.completions.create(
        model="continue",
        messages=messages,
        tools=agent_tools(),
        max_tokens=12,
        temperature=0,
        stream=True,
    ):
        if chunk.choices and (chunk.choices[0].delta.content or chunk.choices[0].delta.tool_calls):
            ttft = ttft or time.perf_counter() - started
            text += chunk.choices[0].delta.content or ""
    return (ttft or time.perf_counter() - started), text


def second_turn(client: openai.OpenAI, run: int) -> tuple[float, float, int]:
    turn1 = [
        {"role": "system", "content": f"Session {run}. " + SYSTEM},
        {"role": "user", "content": "List the files in src."},
    ]
    first, answer = time_to_first_token(client, turn1)
    usage = client.chat.completions.create(
        model="continue", messages=turn1, tools=agent_tools(), max_tokens=1
    ).usage.prompt_tokens
    turn2 = [
        *turn1,
        {"role": "assistant", "content": answer or "Done."},
        {"role": "user", "content": "Now open the README."},
    ]
    second, _ = time_to_first_token(client, turn2)
    return first, second, usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with gateway(Path(tempfile.mkdtemp()), "--n-ctx", "4096") as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        results["gateway_tps"] = gateway_decode_rate(client, args.tokens, args.runs)
        turns = [second_turn(client, run) for run in range(args.runs)]
    results["direct_tps"] = direct_decode_rate(args.tokens, args.runs)
    results["decode_ratio"] = results["gateway_tps"] / results["direct_tps"]
    print(
        f"decode: gateway {results['gateway_tps']:.1f} tok/s, direct "
        f"{results['direct_tps']:.1f} tok/s, ratio {results['decode_ratio']:.3f}"
    )
    results["turn1_ttft_s"] = statistics.median(t[0] for t in turns)
    results["turn2_ttft_s"] = statistics.median(t[1] for t in turns)
    results["prompt_tokens"] = turns[0][2]
    results["ttft_speedup"] = results["turn1_ttft_s"] / results["turn2_ttft_s"]
    print(
        f"agent conversation ({results['prompt_tokens']} prompt tokens): turn 1 first token "
        f"{results['turn1_ttft_s']:.2f} s, turn 2 {results['turn2_ttft_s']:.2f} s, "
        f"{results['ttft_speedup']:.1f}x sooner"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
