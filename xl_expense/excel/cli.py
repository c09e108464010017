"""``xl-expense excel …``: build and install the ribbon add-in.

Registered by the main CLI with ``cli.add_command(excel_group)``. Errors go through the main
CLI's :func:`~xl_expense.cli.user_errors` (imported when a command runs, so that the two
modules can import each other in either order).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from xl_expense.cli import user_errors

        return user_errors(func)(*args, **kwargs)

    return wrapper


#: The same help options as the main group, also when this command runs on its own (click
#: caches a command's help option the first time it is built, with or without a parent).
HELP = {"help_option_names": ["-h", "--help"]}


@click.group("excel", context_settings=HELP)
def excel_group() -> None:
    """The Excel ribbon add-in (tab 销售维护费 Expenses) and the worksheet functions' settings."""


@excel_group.command("build")
@click.argument("path", type=click.Path(path_type=Path), default=Path("xl_expense.xlam"))
@click.option("--interpreter", help="Python the add-in runs (written into its xl_expense.conf sheet).")
@_user_errors
def build(path: Path, interpreter: str | None) -> None:
    """Build the add-in from its sources into PATH (a .xlam file or a folder)."""
    from xl_expense.excel.addin import build_addin
    from xl_expense.excel.install import interpreter_key

    settings = {interpreter_key(sys.platform): interpreter} if interpreter else None
    click.echo(f"written / 已写入: {build_addin(path, settings)}")


@excel_group.command("install")
@click.option("--target-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for xl_expense.xlam (default: Excel's startup folder, XLSTART).")
@click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path),
              help="xlwings.conf to update (default: the user's, ~/.xlwings/xlwings.conf).")
@click.option("--interpreter", help="Python that runs the add-in and the functions (default: this one).")
@click.option("--udfs-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding xl_expense_udfs.py (default: udfs/ of this checkout).")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@_user_errors
def install(target_dir: Path | None, config_file: Path | None, interpreter: str | None, udfs_dir: Path | None,
            dry_run: bool) -> None:
    """Install the ribbon add-in and write the xlwings settings for the XE_ worksheet functions."""
    from xl_expense.excel.install import install_addin

    plan = install_addin(target_dir, config_file=config_file, interpreter=interpreter, udfs_dir=udfs_dir,
                         dry_run=dry_run)
    verb = "would write / 将写入" if dry_run else "written / 已写入"
    click.echo(f"add-in / 加载项 {verb}: {plan.addin_path}")
    for key, value in plan.addin_config.items():
        click.echo(f"  sheet xl_expense.conf: {key} = {value}")
    click.echo(f"xlwings settings / 设置 {verb}: {plan.config_file}")
    for key, value in plan.changed.items():
        click.echo(f"  {key} = {value}")
    click.echo("steps left / 剩余步骤:")
    for number, step in enumerate(plan.steps, start=1):
        click.echo(f"  {number}. {step}")
