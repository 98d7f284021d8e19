"""One module per dashboard page; each exposes ``render()`` (run by ``st.navigation``). Not named
``pages/``: Streamlit would also list such a folder beside app.py as pages of its own."""
