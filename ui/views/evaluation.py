"""The evaluation page (see ui/eval_page.py)."""

from ui.eval_page import render

render()
