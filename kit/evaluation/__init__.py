"""The evaluation room: CLEval (rules, then files and CLI), the leaderboard's CSV checks, significance."""
