"""The chapters' install cell on Colab's image: pip keeps torch and changes exactly what colab-install.txt says.

On Colab, `pip install "llmtut @ git+..."` (llmtut.colab.INSTALL_CELL) keeps every preinstalled package that
satisfies llmtut's requirements and upgrades or adds the rest, each to the newest version that fits. This
test asks pip what it would do there, with a dry run (`pip install --dry-run --report`) for Colab's Python
and platform, from PyPI, and checks that

- pip finds an install that keeps Colab's torch (2.11.0+cu128): torch is pinned to it, so a requirement
  that needs another torch fails the resolution, and the failure names it;
- what pip upgrades or adds is exactly colab-install.txt, the combination the Colab twin (.venv-colab,
  `make hub-rehearsal`) installs and runs;
- each upgrade is needed: Colab's own version fails a requirement of the resolved set;
- the twin, where it has been built, got the same versions of the book's libraries;
- pyproject.toml's bounds admit Colab's combination and CI's pins (constraints.txt).

How the dry run stands in for Colab's site-packages, which it cannot see: every package of Colab's freeze
(../shared/hub-samples/colab/pip-freeze.gpu.txt; colab-image.txt where ../shared is absent) is pinned to
Colab's version, a constraint, except the upgrades that colab-install.txt lists, which pip resolves freely
as it does on Colab; packages that Colab lacks are free anyway. When that fails on one of Colab's pins, pip
runs again with that package freed too (three times at most), so that the failure says what pip would then
install. torch is a stand-in wheel of Colab's build
(version 2.11.0+cu128, torch 2.11.0's requirements but its CUDA libraries, which Colab has installed with it
and which nothing else in llmtut's tree needs): pip resolves around it without downloading 530 MB, and
without PyPI's CUDA 13 libraries, which Colab does not use. This machine's pip configuration (the global
constraints file, the local wheel folders and indexes, PIP_* variables) is left out: the dry run sees PyPI
only, as Colab does.

It needs PyPI: without the network it fails under CI=true and is skipped elsewhere. One dry run takes half a
minute to a minute: pip downloads each wheel it reads the metadata of (about 150 MB; this machine's PyPI
proxy serves no PEP 658 metadata and no cache headers, so _build/pip-cache helps only elsewhere).
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from llmtut.world import hub

pytestmark = pytest.mark.slow  # a pip dry run against PyPI: about half a minute

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
IMAGE = ROOT / "colab-image.txt"
EXPECTED = ROOT / "colab-install.txt"
CONSTRAINTS = ROOT / "constraints.txt"
TWIN = ROOT / ".venv-colab"
FREEZE = hub.default_samples() / "colab" / "pip-freeze.gpu.txt"
PIP_CACHE = ROOT / "_build" / "pip-cache"

INDEX = "https://pypi.org/simple"
# Colab's GPU runtime (../shared/hub-samples/colab/os-info-gpu.txt): Ubuntu 22.04 (glibc 2.35), Python 3.13.15.
COLAB_PYTHON = "3.13.15"
COLAB_GLIBC_MINOR = 35
COLAB_TORCH = "2.11.0+cu128"
# torch 2.11.0's Requires-Dist (its METADATA on PyPI) but its CUDA libraries (cuda-toolkit, cuda-bindings,
# nvidia-*, triton): the stand-in's requirements. Update both with Colab's torch.
TORCH_REQUIRES = [
    "filelock",
    "typing-extensions>=4.10.0",
    "setuptools<82",
    "sympy>=1.13.3",
    "networkx>=2.5.1",
    "jinja2",
    "fsspec>=0.8.5",
]
# The libraries the chapters lean on: the twin must have the versions Colab gets.
BOOK = [
    "transformers",
    "peft",
    "accelerate",
    "tokenizers",
    "datasets",
    "huggingface-hub",
    "pyarrow",
    "trl",
    "evaluate",
]
# pip evaluates environment markers for the Python it runs on, whatever --python-version says
# (pypa/pip#11010): the dry run's pip gets Colab's marker environment instead.
COLAB_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": COLAB_PYTHON,
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": COLAB_PYTHON,
    "python_version": "3.13",
    "sys_platform": "linux",
}
RUN_PIP = """\
import json, sys
from pip._vendor.packaging import markers
colab = {**markers.default_environment(), **json.loads(sys.argv.pop(1))}
markers.default_environment = lambda: dict(colab)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
HOW_TO_UPDATE = (
    "If the new combination is wanted (a new release on PyPI, a new bound in pyproject.toml), write it to "
    "colab-install.txt, run `make hub-rehearsal` so that the Colab twin installs and runs it (remove "
    ".venv-colab/.installed first if pyproject.toml and colab-image.txt are unchanged), and update the "
    "README's 'Running on Colab'. If not, bound the requirement in pyproject.toml."
)


def read_pins(path: Path) -> dict[str, str]:
    """Canonical name -> version, for each `name==version` line (comments and other lines ignored)."""
    found = {}
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;#]+)\s*(#.*)?", line.strip()):
            found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def same_version(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def requirements() -> list[str]:
    """llmtut's runtime requirements, as the install cell resolves them (no dev extras)."""
    import tomllib

    return tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]


def colab_pins() -> tuple[dict[str, str], bool]:
    """Colab's preinstalled versions (torch as COLAB_TORCH), and whether they are the full freeze."""
    if FREEZE.exists():
        pins = read_pins(FREEZE)
        assert pins.get("torch") == COLAB_TORCH, (
            f"Colab's freeze has torch {pins.get('torch')}, this test stands in {COLAB_TORCH}: set "
            f"COLAB_TORCH and TORCH_REQUIRES (its METADATA's Requires-Dist but the CUDA libraries) to it"
        )
        return pins, True
    return {**read_pins(IMAGE), "torch": COLAB_TORCH}, False


def torch_stand_in(folder: Path) -> None:
    """A wheel of Colab's torch build for pip to resolve against: metadata only."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"torch-{COLAB_TORCH}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: torch\nVersion: {COLAB_TORCH}\nRequires-Python: >=3.10\n"
    metadata += "".join(f"Requires-Dist: {req}\n" for req in TORCH_REQUIRES)
    with zipfile.ZipFile(folder / f"torch-{COLAB_TORCH}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{info}/METADATA", metadata)
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: llmtut\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")


# Requirements that PyPI has as source only (rouge-score): Colab's pip builds them, a pure-Python wheel.
# The dry run takes binaries only (pip needs that for another Python's platform), so they are built here
# first, from the same PyPI, and offered to it.
SOURCE_ONLY = {"rouge-score"}


def build_source_only(folder: Path, env: dict[str, str]) -> None:
    """Wheels of llmtut's source-only requirements, at the newest version its bound allows, into `folder`."""
    wanted = [line for line in requirements() if canonicalize_name(Requirement(line).name) in SOURCE_ONLY]
    if not wanted:
        return
    cert = ["--cert", os.environ["PIP_CERT"]] if os.environ.get("PIP_CERT") else []
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--isolated", "--disable-pip-version-check",
               "--progress-bar", "off", *cert, "--index-url", INDEX, "-w", str(folder), *wanted]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"could not build {wanted} from PyPI's source:\n{done.stdout}{done.stderr}"


def pip_env() -> dict[str, str]:
    """The environment for pip: this machine's pip configuration left out (PyPI only, as on Colab)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # skips every pip.conf (--isolated leaves the global one in force)
    return env


def unreachable(url: str) -> str | None:
    try:
        urllib.request.urlopen(url, timeout=20).close()
    except OSError as err:
        return str(err)
    return None


CONSTRAINED = re.compile(r"\(constraint\) ([A-Za-z0-9_.-]+)")


def conflict_message(output: str, pins: dict[str, str], free: set[str]) -> str:
    """What pip says, and which of Colab's pinned packages it would have to change."""
    said = [
        line.rstrip()
        for line in output.splitlines()
        if line.startswith(("ERROR", "The conflict is caused by"))
        or re.search(
            r" depends on |The user requested|Could not find a version|No matching distribution", line
        )
    ]
    pinned = sorted({canonicalize_name(name) for name in CONSTRAINED.findall(output)})
    message = ["pip finds no install of llmtut on Colab's image (Python 3.13, its preinstalled versions)."]
    if "torch" in pinned:
        message.append(
            f"A requirement needs another torch than Colab's {COLAB_TORCH}: the install must never change "
            "Colab's CUDA build. Lower that requirement's bound (pyproject.toml), or wait for Colab's image."
        )
    message += [
        f"pip would have to change {name}, which Colab has at {pins.get(name)} and colab-install.txt does "
        "not list as an upgrade."
        for name in pinned
        if name != "torch"
    ]
    message += ["pip says:", *("    " + line for line in said or output.splitlines()[-30:])]
    message.append(f"Upgrades left to pip (colab-install.txt): {', '.join(sorted(free)) or 'none'}.")
    return "\n".join(message)


def pip_dry_run(work: Path, pins: dict[str, str], free: set[str]) -> tuple[str, dict | None]:
    """pip's output and report (None if it fails) for llmtut on Colab: `free` unpinned, torch Colab's."""
    work.mkdir(parents=True)
    constraints = [f"{name}=={version.split('+')[0]}" for name, version in sorted(pins.items())]
    constraints = [line for line in constraints if line.split("==")[0] not in free | {"torch"}]
    (work / "constraints.txt").write_text("\n".join([*constraints, f"torch=={COLAB_TORCH}"]) + "\n")
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(COLAB_GLIBC_MINOR, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    # --target: pip (23.2) takes --platform and its kin only with it; a dry run writes nothing there.
    env = pip_env()
    cert = ["--cert", os.environ["PIP_CERT"]] if os.environ.get("PIP_CERT") else []
    report = work / "report.json"
    command = [
        sys.executable, "-c", RUN_PIP, json.dumps(COLAB_MARKERS),
        "install", "--dry-run", "--ignore-installed", "--report", str(report), "--target", str(work / "target"),
        "--isolated", "--disable-pip-version-check", "--progress-bar", "off", "--timeout", "60", *cert,
        "--cache-dir", str(PIP_CACHE),
        "--python-version", "3.13", "--implementation", "cp", "--abi", "cp313", "--abi", "abi3", "--abi", "none",
        *(f"--platform={platform}" for platform in platforms), "--only-binary=:all:",
        "--index-url", INDEX, "--find-links", str(work.parent / "wheels"),
        "--constraint", str(work / "constraints.txt"), *requirements(),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    ok = done.returncode == 0 and report.exists()
    return done.stdout + done.stderr, json.loads(report.read_text()) if ok else None


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """pip's dry runs of the install on Colab's image: the first with colab-install.txt's upgrades left to
    pip; if that fails on Colab's pins, again with those pins freed too, to say what pip would do then."""
    if why := unreachable(f"{INDEX}/pip/"):
        message = f"the Colab install test needs PyPI ({INDEX}), which is unreachable: {why}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pins, full = colab_pins()
    expected = read_pins(EXPECTED)
    work = tmp_path_factory.mktemp("colab-install")
    torch_stand_in(work / "wheels")
    build_source_only(work / "wheels", pip_env())
    free = {name for name in expected if name in pins}
    first = None
    for attempt in range(4):
        output, report = pip_dry_run(work / f"run{attempt}", pins, free)
        first = first or {"output": output, "ok": report is not None, "free": set(free)}
        more = {canonicalize_name(name) for name in CONSTRAINED.findall(output)} - free - {"torch"}
        if report is not None or not more:
            break
        free |= more
    return {"first": first, "report": report, "free": free, "pins": pins, "full": full, "expected": expected}


def resolved(run) -> dict[str, str]:
    """Name -> version of what pip installs in the last dry run (the test is skipped if it found none)."""
    if run["report"] is None:
        pytest.skip(
            "pip finds no install on Colab's image: test_install_resolves_and_keeps_colabs_torch says why"
        )
    environment = run["report"]["environment"]
    assert environment["python_version"] == "3.13", (
        f"pip evaluated markers for Python {environment['python_version']}"
    )
    return {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in run["report"]["install"]
    }


def test_install_resolves_and_keeps_colabs_torch(dry_run):
    first = dry_run["first"]
    if not first["ok"]:
        message = conflict_message(first["output"], dry_run["pins"], first["free"])
        if dry_run["report"] is not None:
            message += (
                f"\nWith {', '.join(sorted(dry_run['free'] - first['free']))} upgraded as well, pip finds an "
                "install: test_install_changes_what_colab_install_txt_says lists it."
            )
        pytest.fail(message)
    versions = resolved(dry_run)
    assert versions.get("torch") == COLAB_TORCH, f"pip would install torch {versions.get('torch')} on Colab"


def test_install_changes_what_colab_install_txt_says(dry_run):
    versions, pins, expected = resolved(dry_run), dry_run["pins"], dry_run["expected"]
    # Without the full freeze, packages Colab has but colab-image.txt does not name look like additions:
    # then only the packages either file names are compared.
    names = set(versions) if dry_run["full"] else (set(pins) | set(expected)) & set(versions)
    changes = {name: versions[name] for name in names if not same_version(pins.get(name), versions[name])}
    diff = [
        f"{name}: Colab {pins.get(name, '(not installed)')}, pip {changes.get(name, '(keeps it)')}, "
        f"colab-install.txt {expected.get(name, '(not listed)')}"
        for name in sorted(set(changes) | set(expected))
        if not same_version(changes.get(name), expected.get(name))
    ]
    body = "\n".join(f"{name}=={version}" for name, version in sorted(changes.items()))
    assert not diff, (
        "On Colab's image the install changes other packages or versions than colab-install.txt says:\n    "
        + "\n    ".join(diff)
        + f"\npip's upgrades and additions, as colab-install.txt would list them:\n{body}\n{HOW_TO_UPDATE}"
    )


def requirements_on(report: dict, name: str) -> list[tuple[str, Requirement]]:
    """(who, requirement) for each requirement on `name` in the resolved set, for Colab's markers."""
    environment = report["environment"]
    found = [("llmtut", Requirement(line)) for line in requirements()]
    for item in report["install"]:
        meta, extras = item["metadata"], ["", *item.get("requested_extras", [])]
        for req in map(Requirement, meta.get("requires_dist", [])):
            if not req.marker or any(
                req.marker.evaluate({**environment, "extra": extra}) for extra in extras
            ):
                found.append((f"{meta['name']} {meta['version']}", req))
    return [(who, req) for who, req in found if canonicalize_name(req.name) == name]


def test_each_upgrade_is_needed(dry_run):
    """pip keeps a preinstalled version that fits: each upgrade listed must be forced by a requirement."""
    resolved(dry_run)
    pins, report = dry_run["pins"], dry_run["report"]
    kept = []
    for name in sorted(dry_run["free"]):
        blocking = [
            f"{who} requires {req}"
            for who, req in requirements_on(report, name)
            if not req.specifier.contains(pins[name], prereleases=True)
        ]
        if not blocking:
            kept.append(f"{name} {pins[name]}")
    assert not kept, (
        f"Colab's {', '.join(kept)} satisfies every requirement of the resolved set: pip on Colab keeps it. "
        "Remove it from colab-install.txt, and run `make hub-rehearsal` so that the twin keeps it too."
    )


def test_twin_installs_what_colab_gets():
    """The Colab twin (pip for real, on Python 3.11 and colab-image.txt) got the versions of the dry run."""
    freeze, stamp = TWIN / "freeze.txt", TWIN / ".installed"
    if not (freeze.exists() and stamp.exists()):
        pytest.skip(
            "no Colab twin yet: `make hub-rehearsal` builds .venv-colab (after the unit tests in `make test`)"
        )
    newer = [
        path.name for path in (PYPROJECT, IMAGE, EXPECTED) if path.stat().st_mtime > stamp.stat().st_mtime
    ]
    if newer:
        pytest.skip(
            f"the Colab twin predates {', '.join(newer)}: `make hub-rehearsal` rebuilds it "
            "(remove .venv-colab/.installed first if only colab-install.txt changed)"
        )
    twin, image, expected = read_pins(freeze), read_pins(IMAGE), read_pins(EXPECTED)
    want = {name: expected.get(name, image.get(name)) for name in BOOK}
    got = {name: twin.get(name) for name in BOOK}
    diff = [
        f"{name}: twin {got[name]}, Colab {want[name]}"
        for name in BOOK
        if not same_version(got[name], want[name])
    ]
    assert not diff, (
        "The Colab twin's versions differ from what the install gets on Colab (colab-image.txt and "
        "colab-install.txt):\n    " + "\n    ".join(diff) + "\nEither the twin predates a release on PyPI "
        "(rebuild it: rm .venv-colab/.installed && make hub-rehearsal), or pip in the twin (Python 3.11, "
        "colab-image.txt's packages only) chose otherwise than the dry run for Colab: then colab-install.txt, "
        "pyproject.toml's bounds or this test's model of Colab need a look."
    )


def test_bounds_admit_the_tested_versions():
    """pyproject.toml admits Colab's combination (so pip keeps or takes it) and CI's pins."""
    colab = {**read_pins(IMAGE), **read_pins(EXPECTED), "torch": COLAB_TORCH}
    ci = read_pins(CONSTRAINTS)
    if m := re.search(r"^TORCH_SPEC \?= torch==(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE):
        ci["torch"] = m.group(1)
    refused = [
        f"{req} refuses {where}'s {name} {pins[name]}"
        for req in map(Requirement, requirements())
        for where, pins in (("Colab", colab), ("CI", ci))
        if (name := canonicalize_name(req.name)) in pins
        and not req.specifier.contains(pins[name], prereleases=True)
    ]
    assert not refused, "pyproject.toml's dependencies:\n    " + "\n    ".join(refused)
