"""Renderers: console text, CSV, JSON and the auditors' Excel workbooks.

openpyxl is imported only inside this package.
"""
