"""Pure business logic: pandas, numpy, scikit-learn (and the ``holidays`` calendar) only.

Nothing in this package reads or writes files, prints, or imports openpyxl, xlwings,
python-calamine, click or rich; ``tests/test_layers.py`` enforces it. Workbooks come
in and go out through :mod:`xl_expense.io`.
"""
