"""Excel integration through xlwings' open-source classic add-in: the ribbon add-in and its macros.

* :mod:`.addin` builds ``xl_expense.xlam`` (ribbon ``customUI.xml`` + the VBA of ``vba/``)
  with the VBA-project writer of :mod:`.ovba` / :mod:`.cfb`;
* :mod:`.macros` holds the Python entry points the ribbon buttons call through ``RunPython``;
* :mod:`.install` / :mod:`.cli`: ``xl-expense excel install`` and ``xl-expense excel build``.

Importing this package imports neither xlwings nor any workflow: the builder runs anywhere.
"""

from __future__ import annotations

__all__ = ["ADDIN_NAME", "build_addin", "install_addin"]


def __getattr__(name: str):
    # Lazy: `xl_expense.excel.build_addin` without importing the builder for the macros.
    if name in ("ADDIN_NAME", "build_addin"):
        from xl_expense.excel import addin

        return getattr(addin, name)
    if name == "install_addin":
        from xl_expense.excel.install import install_addin

        return install_addin
    raise AttributeError(name)
