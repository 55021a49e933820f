"""Requests into prompt text: chat templates, rendering, tool-call parsing and grammars, schemas."""
