"""Workbooks ⇄ DataFrames: calamine/openpyxl files and live xlwings books.

No business rules live here: io finds tables, parses cells into the canonical schema
and writes sheets back without damaging the rest of the workbook.
"""
