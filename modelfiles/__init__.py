"""Ollama Modelfiles and the Jinja chat templates shared by serving and training."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
MODELFILES_DIR = Path(__file__).parent
