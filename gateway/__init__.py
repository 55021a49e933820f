"""loragate's gateway: OpenAI- and Ollama-compatible serving over pluggable backends."""

__version__ = "0.1.0"
