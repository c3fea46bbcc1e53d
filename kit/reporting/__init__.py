"""The reporting room: error analysis, leaderboard-style comparison tables and the plots the notebooks show."""
