"""HTTP wire formats: OpenAI (`/v1`), Ollama (`/api`) and loragate's own routes."""
