"""The data room: competition files (annotation JSON, leaderboard CSV), synthetic receipts, dataset, targets, EDA."""
