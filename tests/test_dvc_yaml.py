"""dvc.yaml against the code: every stage depends on exactly the files its script runs."""

import ast
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())


def _imported_files(path: Path) -> set[str]:
    """The project files that running `path` imports: stage helpers and package modules,
    followed through the package's own imports."""
    found: set[str] = set()
    pending = [path]
    while pending:
        current = pending.pop()
        relative = str(current.relative_to(REPO))
        if relative in found:
            continue
        found.add(relative)
        for node in ast.walk(ast.parse(current.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name == "_bootstrap":
                    pending.append(REPO / "stages/_bootstrap.py")
                elif name.split(".")[0] == "mnist_vae":
                    module = REPO / "src" / (name.replace(".", "/") + ".py")
                    pending.append(
                        module if module.exists() else module.with_suffix("") / "__init__.py"
                    )
    return found


def test_every_stage_depends_on_exactly_the_code_it_runs():
    for name, stage in DVC_YAML["stages"].items():
        script = REPO / stage["cmd"].split()[-1]
        code_deps = {dep for dep in stage["deps"] if dep.endswith(".py")}
        assert code_deps == _imported_files(script), name


def test_stage_commands_are_plain_python_in_any_shell():
    for name, stage in DVC_YAML["stages"].items():
        assert stage["cmd"] == f"python stages/{name}.py", name


def test_the_lock_pins_every_direct_requirement_within_its_range():
    from packaging.requirements import Requirement

    direct = [
        Requirement(line.split("#")[0])
        for line in (REPO / "requirements.in").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    pins: dict[str, list[str]] = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            pinned = Requirement(line)
            pins.setdefault(pinned.name.lower(), []).append(str(pinned.specifier)[2:])
    for requirement in direct:
        versions = pins.get(requirement.name.lower())
        assert versions, f"{requirement.name} is in requirements.in but not locked: `make lock`"
        for version in versions:
            assert requirement.specifier.contains(version), f"{requirement} but locked {version}"
