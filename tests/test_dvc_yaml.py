"""dvc.yaml against the code: every stage depends on exactly the files its script runs and
reads, and declares exactly the params its code reads."""

import ast
import functools
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "mnist_vae"
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


def _string_literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _outputs(stage: dict) -> list[str]:
    return [next(iter(out)) if isinstance(out, dict) else out
            for out in stage.get("outs", []) + stage.get("metrics", [])]  # fmt: skip


def test_every_stage_depends_on_exactly_the_other_files_it_reads():
    """The files that are not code: the package's own (a module names them, `explorer.html`),
    and other stages' outputs the script names (`models/vae.pt`, or `data`, the folder that
    holds `data/${data.dataset}/raw`)."""
    package_data = {p.name for p in PACKAGE.iterdir() if p.is_file() and p.suffix != ".py"}
    for name, stage in DVC_YAML["stages"].items():
        script = REPO / stage["cmd"].split()[-1]
        package_files = {
            f"src/mnist_vae/{literal}"
            for module in _imported_files(script)
            if module.startswith("src/")
            for literal in _string_literals(REPO / module)
            if literal in package_data
        }
        literals = _string_literals(script)
        outputs_read = {
            out
            for other, other_stage in DVC_YAML["stages"].items()
            if other != name
            for out in _outputs(other_stage)
            if any(out == literal or out.startswith(f"{literal}/") for literal in literals)
        }
        other_deps = {dep for dep in stage["deps"] if not dep.endswith(".py")}
        assert other_deps == package_files | outputs_read, name


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


# params: what each stage reads, found in the code with `ast`, against what it declares. Reading
# the code (rather than changing each key in a tiny repo and asking `dvc status`, which only
# echoes dvc.yaml back, or rerunning the stages, which cannot tell a key that changes nothing
# on tiny data from a key never read) names exactly the keys a stage's results can depend on.
def _fields(model) -> dict:
    from pydantic import BaseModel

    tree = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        tree[name] = _fields(annotation) if is_model else None
    return tree


def _params_tree() -> dict:
    from mnist_vae.params import Params

    return _fields(Params)


def _leaves(tree, path=()) -> set[tuple[str, ...]]:
    if tree is None:
        return {path}
    return {leaf for name, sub in tree.items() for leaf in _leaves(sub, (*path, name))}


def _subtree(tree, path):
    for name in path:
        tree = tree[name]
    return tree


@functools.cache
def _functions(module: Path) -> tuple[dict[str, ast.FunctionDef], dict[str, tuple[Path, str]]]:
    """A module's top-level functions by name, and the package functions it imports by name."""
    tree = ast.parse(module.read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnist_vae."):
            source = REPO / "src" / (node.module.replace(".", "/") + ".py")
            for alias in node.names:
                imported[alias.asname or alias.name] = (source, alias.name)
    return functions, imported


def _returns_params(function: ast.FunctionDef) -> int | None:
    """None, or where the Params object is in what `function` returns: -1 for the whole
    value, N for element N of a returned tuple (`tuple[Params, torch.device]`)."""
    returns = function.returns
    if isinstance(returns, ast.Name) and returns.id == "Params":
        return -1
    if isinstance(returns, ast.Subscript) and isinstance(returns.slice, ast.Tuple):
        for index, element in enumerate(returns.slice.elts):
            if isinstance(element, ast.Name) and element.id == "Params":
                return index
    return None


class _ParamsReads:
    """The params key paths read in one scope (a script, or a package function), given which
    callables return the Params object: attribute chains on it (`params.train.epochs`), or on a
    name bound to a section (`settings = params.train; settings.lr`); a section used as a value
    (`params.model.model_dump()`, `getattr(settings, name)`) is read whole."""

    def __init__(self, scope: ast.AST, tree: dict, returns_params: dict[str, int]):
        self.tree, self.returns_params = tree, returns_params
        self.parents = {
            child: node for node in ast.walk(scope) for child in ast.iter_child_nodes(node)
        }
        self.bound: dict[str, tuple[str, ...]] = {}
        self.aliases: set[ast.AST] = set()  # expressions that only bind a name
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self._bind(target, node.value)
        self.reads: set[tuple[str, ...]] = set()
        for node in ast.walk(scope):
            if node in self.aliases or not isinstance(getattr(node, "ctx", None), ast.Load):
                continue
            parent = self.parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.value is node:
                continue  # not the whole chain
            while isinstance(parent, ast.Tuple):
                parent = self.parents.get(parent)
            if isinstance(parent, ast.Return):
                continue  # handed to the caller, whose own reads count
            resolved = self._resolve(node)
            if resolved is not None:
                self.reads.add(resolved)

    def _bind(self, target, value) -> None:
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            where = self.returns_params.get(value.func.id)
            if where == -1 and isinstance(target, ast.Name):
                self.bound[target.id] = ()
            elif (
                where is not None
                and isinstance(target, ast.Tuple)
                and isinstance(target.elts[where], ast.Name)
            ):
                self.bound[target.elts[where].id] = ()
            return
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for one_target, one_value in zip(target.elts, value.elts, strict=True):
                self._bind(one_target, one_value)
            return
        resolved = self._resolve(value)
        # a section given a name (`settings = params.train`): no read yet, the name's uses are
        if (
            isinstance(target, ast.Name)
            and resolved is not None
            and _subtree(self.tree, resolved) is not None
        ):
            self.bound[target.id] = resolved
            self.aliases.add(value)

    def _resolve(self, node) -> tuple[str, ...] | None:
        names = []
        while isinstance(node, ast.Attribute):
            names.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.bound:
            path = self.bound[node.id]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and self.returns_params.get(node.func.id) == -1
        ):
            path = ()
        else:
            return None
        subtree = _subtree(self.tree, path)
        for name in names:
            if subtree is None or name not in subtree:
                break  # a method or attribute of the value (model_dump): the value, whole
            path, subtree = (*path, name), subtree[name]
        return path


def _reads_of(module: Path, scope: ast.AST, tree: dict, seen: set) -> set[tuple[str, ...]]:
    """The params read in `scope` of `module`, and in the package functions it calls."""
    functions, imported = _functions(module)
    callables = {name: (module, name) for name in functions} | imported
    returns_params = {}
    for name, (source, function_name) in callables.items():
        definition = _functions(source)[0].get(function_name)
        where = _returns_params(definition) if definition else None
        if where is not None:
            returns_params[name] = where
    reads = set(_ParamsReads(scope, tree, returns_params).reads)
    for node in ast.walk(scope):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            callee = callables.get(node.func.id)
            # params.py checks the whole file for every stage: validation, not a dependency
            if callee and callee not in seen and callee[0] != PACKAGE / "params.py":
                seen.add(callee)
                definition = _functions(callee[0])[0].get(callee[1])
                if definition is not None:
                    reads |= _reads_of(callee[0], definition, tree, seen)
    return reads


def _declared_params_with_reasons() -> dict[str, dict[str, str | None]]:
    """Each stage's `params:` entries, with the comment beside an entry (why it is there)."""
    declared: dict[str, dict[str, str | None]] = {}
    stage = None
    in_params = False
    for line in (REPO / "dvc.yaml").read_text().splitlines():
        if re.fullmatch(r"  (\w+):", line):
            stage, in_params = line.strip()[:-1], False
        elif re.fullmatch(r"    \w+:.*", line):
            in_params = line.strip() == "params:"
        elif in_params and (entry := re.fullmatch(r"      - ([\w.]+)\s*(?:#\s*(.*))?", line)):
            declared.setdefault(stage, {})[entry[1]] = entry[2]
    return declared


def test_every_stage_declares_exactly_the_params_its_code_reads():
    tree = _params_tree()
    declared_with_reasons = _declared_params_with_reasons()
    for name, stage in DVC_YAML["stages"].items():
        script = REPO / stage["cmd"].split()[-1]
        reads = _reads_of(script, ast.parse(script.read_text()), tree, set())
        declared = {tuple(entry.split(".")) for entry in stage["params"]}
        assert set(declared_with_reasons[name]) == set(stage["params"]), name  # parsed alike
        for read in reads:
            assert any(read[: len(d)] == d for d in declared), (
                f"{name} reads {'.'.join(read) or 'the whole file'} but dvc.yaml does not "
                "declare it: a change to it would leave the stage's outputs stale"
            )
        for entry in declared:
            reason = declared_with_reasons[name][".".join(entry)]
            covered = set()
            for read in reads:
                if read[: len(entry)] == entry or entry[: len(read)] == read:
                    covered |= _leaves(_subtree(tree, read), read) & _leaves(
                        _subtree(tree, entry), entry
                    )
            if covered != _leaves(_subtree(tree, entry), entry) and not reason:
                unread = sorted(
                    ".".join(p) for p in _leaves(_subtree(tree, entry), entry) - covered
                )
                raise AssertionError(
                    f"{name} declares {'.'.join(entry)} but never reads {', '.join(unread)}: "
                    "a change there reruns it for nothing (or say why in a comment beside it)"
                )
