"""The one place that names the book's repository, and the Colab install cell built from it."""

REPO_URL = "https://github.com/llmtut/llmtut"

# The first code cell of every chapter, verbatim (tests/test_book.py checks it). It installs
# the package only in Colab: locally, `make book`/`make test` have installed it already.
INSTALL_CELL = f'''# Colab only: install llmtut, the book's package (with transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "llmtut @ git+{REPO_URL}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)'''
