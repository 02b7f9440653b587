"""Streamlit entry point (`ra ui` runs `streamlit run` on this file): page set-up, sidebar and navigation."""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from ui import chat_page, session_settings, sidebar, style

# An emoji favicon is drawn in the page (a data: URL); a ":material/..." one is fetched from fonts.gstatic.com,
# which fails offline and is a request leaving the machine.
st.set_page_config(page_title="Research assistant", page_icon="🔎", layout="wide")
style.inject()
try:
    settings = session_settings.current()
except ValidationError as exc:  # a bad ra.toml or RA_* variable: say which, the app cannot go on
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    st.error(f"Invalid setting {where}: {first['msg']}. Check ra.toml and the RA_* variables, then reload.")
    st.stop()

chat = st.Page("views/chat.py", title="Chat", icon=":material/forum:", default=True)
search = st.Page("views/search.py", title="Search", icon=":material/search:")
evaluation = st.Page("views/evaluation.py", title="Evaluation", icon=":material/monitoring:")
page = st.navigation([chat, search, evaluation])
with st.sidebar:
    if page is chat:
        chat_page.sidebar_actions(settings)
    sidebar.render(settings)
page.run()
