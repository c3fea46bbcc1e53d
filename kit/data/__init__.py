"""The data room: the competition's files (annotation JSON, leaderboard CSV), the synthetic receipts, the training
dataset with its augmentation and DB targets, and EDA. Imports nothing heavy, so ``--help`` stays fast."""
