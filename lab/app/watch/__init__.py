"""`nwlab watch`: a campaign directory served as a live web page (docs/live-view.md)."""
