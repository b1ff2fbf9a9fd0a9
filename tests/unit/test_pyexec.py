"""layergit.pyexec: lg's helper processes (the monitor, the farm's writer, the
pre-receive hook) import lg from where lg was imported, never from the working
directory, which ``python -m`` would put first on sys.path."""

from __future__ import annotations

import subprocess

from layergit.pyexec import PACKAGE_PARENT, module_argv, module_env


def test_a_module_planted_in_the_working_directory_is_not_run(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil"
    (evil / "layergit").mkdir(parents=True)
    plant = f"open({str(marker)!r}, 'w').close()\n"
    (evil / "layergit" / "__init__.py").write_text(plant)
    (evil / "json.py").write_text(plant)
    proc = subprocess.run(module_argv("layergit.pyexec"), env=module_env({"PATH": "/usr/bin:/bin"}),
                          cwd=evil, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_lgs_own_directory_comes_first_and_the_callers_path_stays():
    env = module_env({"PYTHONPATH": "/opt/extra"})
    assert env["PYTHONPATH"].split(":") == [PACKAGE_PARENT, "/opt/extra"]
    assert module_env({})["PYTHONPATH"] == PACKAGE_PARENT
