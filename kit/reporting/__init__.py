"""The reporting room: error analysis, leaderboard-style comparison tables, the notebooks' plots."""
