"""The edge runtime must run where TensorFlow is absent: every TensorFlow or Keras import is blocked here."""

import json
import os
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


def test_training_commands_say_which_install_brings_tensorflow(tmp_path):
    # digit-export checks its MODEL before loading TensorFlow, so it is given a run folder to pass that.
    script = BLOCKER.split("from edge_runtime import cli")[0] + (
        "import json\n"
        "from click.testing import CliRunner\n"
        "from trainer import cli as train_cli\n"
        "from exporter import cli as export_cli\n"
        "for command in (train_cli.main, export_cli.main):\n"
        "    result = CliRunner().invoke(command, [])\n"
        "    print(json.dumps([result.exit_code, result.output]))\n")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                               timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    results = [json.loads(line) for line in completed.stdout.strip().splitlines()]
    assert len(results) == 2, completed.stderr
    (train_code, train_output), (export_code, export_output) = results
    assert train_code == 1 and "pip install 'digitkit[train]'" in train_output
    # With no run to export, it says so before it ever needs TensorFlow; never a traceback.
    assert export_code != 0 and "Traceback" not in export_output and "model" in export_output