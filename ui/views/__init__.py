"""Page scripts that `st.navigation` runs: files, so tests can switch to them by path; not named pages/,
which Streamlit would take for its older automatic multipage folder."""
