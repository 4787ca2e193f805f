"""llmtut: the package behind the book "Fine-tuning language models".

The lessons are flat modules, one per idea, named after it (`instructions`, `masking`,
`special_tokens`, `chat_template`, `ppo`, `pdss`, `batching`, ...). `profiles` is the one place that
knows the `hub` profile from the offline `tiny` one: it maps each model and data role to a Hub id or
to a build of `llmtut.world`, the tiny world, which the lessons never import. `formats` holds the text
formats that both the chapters and the world write; `trainer_defaults` the quiet training settings
they share.
"""

__version__ = "0.1.0"
