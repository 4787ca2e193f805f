"""llmtut: the package behind the book "Fine-tuning language models". One module per idea."""

__version__ = "0.1.0"
