"""VantageCloud Lake: byom in a user environment of the Open Analytics Framework, for APPLY.

Lake runs Python through APPLY in user environments that teradataml manages (`create_env`,
`install_lib`, `install_file`), not through SCRIPT and tdpython3. The environment gets the
packages byom_score.py imports (pyproject's minimums) and the files `byom teradata deploy`
writes: byom_score.py, byom_core.zip (byom's own code, imported from the zip as on SCRIPT),
byom_check.py and any model files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from udfs.teradata.byom_check import PACKAGES
from udfs.teradata.deploy import build_bundle, write_models


def env_libs() -> list[str]:
    """What byom_score.py imports, as pip requirements with pyproject's minimums."""
    return [f"{dist}>={minimum}" for dist, _, minimum, _ in PACKAGES]


@dataclass(frozen=True)
class EnvPlan:
    name: str
    base_env: str | None
    libs: list[str]
    files: list[str]  # local paths, installed under their own names

    @property
    def desc(self) -> str:
        return "byom: score ONNX and PMML models with APPLY"

    def describe(self) -> list[str]:
        """The teradataml calls `deploy_env` makes, for the user to read (or run by hand)."""
        lines = [
            f"env = get_env({self.name!r})  # if it exists, else:",
            f"env = create_env({self.name!r}, {self.base_env!r}, {self.desc!r})",
            f"env.install_lib({self.libs!r})",
        ]
        lines += [f"env.install_file({path!r}, replace=True)" for path in self.files]
        return lines


def plan_env(
    name: str, out_dir: Path, models: Mapping[str, bytes], base_env: str | None = None
) -> EnvPlan:
    """Write the files to install into `out_dir`: the bundle and each model's file."""
    files = [*build_bundle(out_dir), *write_models(out_dir, models)]
    return EnvPlan(name, base_env, env_libs(), [str(p) for p in files])


def deploy_env(plan: EnvPlan, env_api: Any = None) -> Any:
    """Create the environment (or take the existing one), install the packages and the files.
    `env_api` has teradataml's list_user_envs / get_env / create_env (default: teradataml,
    on the context and auth token the caller set)."""
    if env_api is None:
        import teradataml

        env_api = teradataml
    envs = env_api.list_user_envs()
    if envs is not None and plan.name in list(envs["env_name"]):
        env = env_api.get_env(plan.name)
    else:
        env = env_api.create_env(env_name=plan.name, base_env=plan.base_env, desc=plan.desc)
    env.install_lib(libs=plan.libs)  # pip upgrades what is older than a minimum
    for path in plan.files:
        env.install_file(file_path=path, replace=True)
    return env
