"""The lab side imports on Windows: no module of lab, drivers, procedures or contracts needs a
POSIX-only module (fcntl, termios, resource, pwd, grp) to import.

This machine is not Windows, so a subprocess plays one for our modules only: it imports every
module once as it is (so the third-party libraries are loaded as on this system), forgets our
modules, makes the POSIX-only modules unimportable, says `sys.platform == "win32"` and gives a
stand-in `msvcrt` holding the names `lab.archive.file_locks` takes from it, then imports every
module of ours again. The lock calls themselves (msvcrt byte-range locks) cannot run here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lab", "drivers", "procedures", "contracts")

PLAY_WINDOWS = textwrap.dedent('''
    import importlib, importlib.abc, pkgutil, sys, types

    PACKAGES = {packages!r}
    POSIX_ONLY = ("fcntl", "termios", "resource", "pwd", "grp")

    def names():
        found = []
        for package in PACKAGES:
            found.append(package)
            module = importlib.import_module(package)
            for info in pkgutil.walk_packages(module.__path__, package + "."):
                found.append(info.name)
        return found

    every = names()
    for name in every:
        importlib.import_module(name)
    ours = [name for name in sys.modules if name.split(".")[0] in PACKAGES]
    for name in ours:
        del sys.modules[name]

    class NoPosix(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in POSIX_ONLY:
                raise ModuleNotFoundError(f"No module named {{name!r}} (Windows has none)", name=name)
            return None

    for name in POSIX_ONLY:
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, NoPosix())
    sys.platform = "win32"
    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_NBLCK, msvcrt.LK_UNLCK, msvcrt.LK_LOCK = 2, 0, 1
    msvcrt.locking = lambda fd, mode, nbytes: None
    sys.modules["msvcrt"] = msvcrt

    failed = []
    for name in every:
        try:
            importlib.import_module(name)
        except Exception as error:
            failed.append(f"{{name}}: {{type(error).__name__}}: {{error}}")
    print(len(every), "modules")
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
''').format(packages=PACKAGES)


def test_every_lab_module_imports_without_posix_only_modules():
    result = subprocess.run([sys.executable, "-c", PLAY_WINDOWS], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    files = sum(1 for package in PACKAGES for _ in (ROOT / package).rglob("*.py"))
    assert int(result.stdout.split()[0]) == files           # every module was imported, not an empty walk


def test_the_check_fails_on_a_module_that_imports_fcntl(tmp_path):
    """The subprocess above does catch a module-level `import fcntl`."""
    package = tmp_path / "contracts_probe"
    package.mkdir()
    (package / "__init__.py").write_text("import fcntl\n")
    script = PLAY_WINDOWS.replace(repr(PACKAGES), repr(("contracts_probe",)))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "contracts_probe: ModuleNotFoundError: No module named 'fcntl' (Windows has none)" in result.stdout
