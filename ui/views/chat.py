"""The chat page (see ui/chat_page.py)."""

from ui.chat_page import render

render()
