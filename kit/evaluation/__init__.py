"""The evaluation room: CLEval as the leaderboard scores it (the rules, and their file and command layer), the
leaderboard's checks of a CSV, and whether a difference is real (significance). Imports nothing heavy itself."""
