"""The reporting room: error analysis, notebook 03's error browser, leaderboard-style comparison tables, the
notebooks' plots."""
