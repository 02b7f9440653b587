"""The app's stylesheet: citation markers, support badges and source cards (see ui/citations_html.py)."""

from __future__ import annotations

import streamlit as st

ACCENT = "#1c6fd1"

CSS = f"""
<style>
.ra-answer {{ font-size: 1.05rem; line-height: 1.7; }}
.ra-caret {{ color: {ACCENT}; animation: ra-blink 1s steps(2) infinite; }}
@keyframes ra-blink {{ 50% {{ opacity: 0; }} }}
.ra-cite {{ display: inline-block; margin-left: .15em; padding: 0 .35em; border-radius: .35em;
  background: rgba(28, 111, 209, .12); color: {ACCENT}; font-size: .78em; font-weight: 600;
  line-height: 1.5; text-decoration: none; vertical-align: .15em; }}
.ra-cite:hover {{ background: rgba(28, 111, 209, .25); }}
.ra-badge {{ display: inline-block; margin-left: .35em; padding: 0 .55em; border-radius: 1em;
  font-size: .7em; font-weight: 600; line-height: 1.6; vertical-align: .15em; white-space: nowrap; }}
.ra-supported {{ background: rgba(19, 115, 51, .12); color: #137333; }}
.ra-weak {{ background: rgba(176, 96, 0, .14); color: #a05a00; }}
.ra-unsupported {{ background: rgba(197, 34, 31, .12); color: #c5221f; }}
.ra-sources {{ display: flex; flex-direction: column; gap: .5rem; }}
.ra-hint {{ font-size: .8rem; opacity: .65; }}
.ra-source {{ border: 1px solid rgba(128, 128, 128, .3); border-radius: .6rem; padding: .55rem .8rem;
  scroll-margin-top: 5rem; transition: box-shadow .2s, border-color .2s; }}
.ra-source:target {{ border-color: {ACCENT}; box-shadow: 0 0 0 3px rgba(28, 111, 209, .2); }}
.ra-source-head {{ display: flex; gap: .5rem; align-items: baseline; color: inherit !important;
  text-decoration: none !important; }}
.ra-num {{ flex: none; min-width: 1.5em; text-align: center; border-radius: .35em; font-size: .8em;
  font-weight: 700; background: rgba(28, 111, 209, .12); color: {ACCENT}; }}
.ra-doc {{ font-weight: 600; overflow-wrap: anywhere; }}
.ra-page {{ font-size: .85em; opacity: .7; white-space: nowrap; }}
.ra-quote {{ margin-top: .3rem; font-size: .9em; opacity: .85; }}
.ra-passage {{ display: none; margin-top: .5rem; }}
.ra-source:target .ra-passage {{ display: block; }}
.ra-label {{ margin-top: .35rem; font-size: .72em; font-weight: 600; letter-spacing: .05em;
  text-transform: uppercase; opacity: .6; }}
.ra-text, .ra-code {{ max-height: 22rem; overflow: auto; margin: .2rem 0 0; padding: .5rem .65rem;
  border-radius: .4rem; background: rgba(128, 128, 128, .08); font-size: .85em; white-space: pre-wrap; }}
.ra-code {{ font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }}
.ra-flag {{ margin-top: .35rem; font-size: .8em; color: #8a4b00; background: #fff4e0; padding: .2rem .4rem; border-radius: .3em; }}
mark.ra-hl {{ background: #ffe58a; color: #1f1f1f; padding: 0 .1em; border-radius: .2em; }}
[data-testid="stSidebar"] [data-testid="stMetricValue"] {{ font-size: 1.6rem; }}
.ra-pageview {{ position: relative; margin-top: .3rem; line-height: 0; box-shadow: 0 0 0 1px rgba(128, 128, 128, .3); }}
.ra-pageview img {{ display: block; width: 100%; height: auto; }}
.ra-box {{ position: absolute; background: rgba(255, 214, 10, .38); outline: 1px solid rgba(224, 168, 0, .9);
  border-radius: 1px; pointer-events: none; }}
.ra-pagescroll {{ max-height: 80vh; overflow: auto; }}
.ra-close {{ display: inline-block; margin-top: .35rem; font-size: .8em; }}
</style>
"""


def inject() -> None:
    st.html(CSS)
