"""The edge runtime must run where TensorFlow is absent: every TensorFlow or Keras import is blocked here."""

import json
import subprocess
import sys

from conftest import REPO, SAMPLES

BLOCKER = """
import importlib.abc, json, sys
class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "tensorflow_cpu"):
            raise ImportError(f"blocked: the edge runtime imported {name}")
sys.meta_path.insert(0, BlockTensorFlow())
from edge_runtime import cli
sys.argv = ["digit-infer", "--format", "jsonl", "--verbose", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exit_:
    code = exit_.code
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "matplotlib"))
print(json.dumps({"exit": code, "heavy_modules": heavy}), file=sys.stderr)
"""


def test_reading_a_folder_never_imports_tensorflow_or_matplotlib():
    completed = subprocess.run([sys.executable, "-c", BLOCKER, str(SAMPLES)], capture_output=True, text=True,
                               cwd=REPO, timeout=120)
    summary = json.loads(completed.stderr.strip().splitlines()[-1])
    assert summary == {"exit": 0, "heavy_modules": []}, completed.stderr
    assert "interpreter: ai_edge_litert" in completed.stderr
    rows = [json.loads(line) for line in completed.stdout.splitlines()]
    assert rows and all(row["status"] != "error" for row in rows)


def test_training_commands_say_which_install_brings_tensorflow():
    script = BLOCKER.split("from edge_runtime import cli")[0] + (
        "from click.testing import CliRunner\n"
        "from trainer import cli as train_cli\n"
        "from exporter import cli as export_cli\n"
        "for command in (train_cli.main, export_cli.main):\n"
        "    result = CliRunner().invoke(command, [])\n"
        "    print(result.exit_code, result.output.strip())\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 2, completed.stderr
    for line in lines:
        assert line.startswith("1 Error: digit-") and "pip install 'digitkit[train]'" in line
