"""The Streamlit entry point (``cryptolake dashboard`` runs ``streamlit run`` on this file)."""

import streamlit as st

from cryptolake_assets.dashboard import PAGES
from cryptolake_assets.dashboard.views import correlations, overview, predictions, price, quality, sentiment

RENDER = {
    "overview": overview.render,
    "price": price.render,
    "correlations": correlations.render,
    "sentiment": sentiment.render,
    "predictions": predictions.render,
    "quality": quality.render,
}

st.set_page_config(page_title="CryptoLake", layout="wide")
page = st.navigation(
    [st.Page(RENDER[path], title=title, url_path=path, default=path == "overview") for path, title in PAGES.items()]
)
page.run()
