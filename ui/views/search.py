"""The search page (see ui/search_page.py)."""

from ui.search_page import render

render()
