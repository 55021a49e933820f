"""Recorded work for the trainer's tests: a fact the base model gets wrong, asked two dozen
ways and corrected each time."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.generation import Assembled, Finish, GenerationRequest
from gateway.recording.recorder import Recorder
from gateway.recording.records import FeedbackRecord, InteractionRecord

ANSWER = "The loragate gateway listens on port 8420 by default."
TRAIN_ASKS = [
    "What port does loragate listen on?", "Which port is loragate on by default?",
    "On what port does the loragate gateway run?", "Tell me loragate's default port.",
    "loragate default port?", "What TCP port does loragate use?",
    "Which port should I connect to for loragate?", "What is the port number of loragate?",
    "Where does loragate listen, which port?", "What's loragate's port?",
    "Remind me of the port loragate serves on.", "Port used by the loragate gateway?",
    "Which local port does loragate open?", "I forgot the loragate port, what is it?",
    "What port number does loragate bind to by default?", "Default loragate port please.",
    "loragate runs on which port?", "Tell me the port of the loragate server.",
    "What port is the loragate API on?", "Which port does loragate serve its API on?",
    "What is loragate's listening port?", "The loragate gateway uses what port?",
    "Give me the default port for loragate.", "What port do I point Continue at for loragate?",
]  # fmt: skip
# a day's worth: the same fact corrected 42 times (`tests/bench/bench_taught_fact.py`)
MORE_ASKS = [
    "Which port do I use to talk to loragate?", "loragate port number?",
    "What's the default listening port of the loragate gateway?",
    "Where is loragate reachable, which port?", "What port does the loragate server open?",
    "Can you tell me which port loragate uses?", "Which port is the loragate gateway bound to?",
    "What is the standard port for loragate?", "Which port number does loragate listen on?",
    "What port should curl use for loragate?", "loragate: which TCP port?",
    "What port is loragate serving on right now?", "Port of loragate?",
    "What port does loragate's OpenAI API use?", "Which port do I configure for loragate?",
    "loragate listens on what port by default?", "Which port is loragate's HTTP server on?",
    "What's the port for the loragate API server?",
]  # fmt: skip
UNSEEN = [
    "By default, loragate accepts connections on which port number?",
    "If I start loragate without options, what port will it use?",
    "Which port number is the loragate gateway's default?",
    "What port should my OpenAI client use to reach loragate?",
]


def chat(iid: str, ask: str, answer: str, at: float, workload: str = "chat") -> InteractionRecord:
    """A finished plain chat exchange, as the gateway would hand it to the recorder."""
    return InteractionRecord(
        id=iid, created_at=at, api="chat", workload=workload, model_requested="auto",
        version="m@v0", status="complete",
        request=GenerationRequest(model="m", messages=[{"role": "user", "content": ask}]),
        answer=Assembled(text=answer, finish=Finish("stop", 9, 9)),
    )  # fmt: skip


async def record(
    home: Path,
    interactions: list[InteractionRecord],
    feedback: list[FeedbackRecord],
    store_url: str | None = None,
) -> None:
    """Through the real recorder: the interactions first, then the feedback on them."""
    recorder = Recorder(home, store_url=store_url)
    await recorder.start()
    for interaction in interactions:
        recorder.submit(interaction)
    await recorder.flush()
    for item in feedback:
        recorder.submit(item)
    await recorder.close()


async def record_corrections(home: Path, asks: list[str] = TRAIN_ASKS) -> None:
    """The fact asked `asks` ways, answered wrong, each answer corrected to `ANSWER`."""
    now = time.time()
    wrong = "loragate listens on port 8080."
    asked = [chat(f"ia_{i}", ask, wrong, now + i) for i, ask in enumerate(asks)]
    fixed = [FeedbackRecord(a.id, now + 100, accepted=False, correction=ANSWER) for a in asked]
    await record(home, asked, fixed)
