"""lth.launch runs the jobs in its own interpreter's environment, activated or not."""

import os
import subprocess
import sys
from pathlib import Path

SNAKEFILE = '''
rule which_python:
    output: "python.txt"
    shell: "python -c 'import sys; print(sys.prefix)' > {output}"
'''


def test_jobs_run_with_the_launchers_python_when_no_venv_is_active(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    bare = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    bare["PATH"] = "/usr/bin:/bin"  # no venv on it: `python` there is not this one
    done = subprocess.run([sys.executable, "-m", "lth.launch", "--cores", "1", "--quiet"],
                          cwd=tmp_path, env=bare, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path((tmp_path / "python.txt").read_text().strip()) == Path(sys.prefix)
