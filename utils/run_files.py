"""The files of a run directory of main.py, and what shipping copies to data/ under which name:
one list that main.py, training.py, predict.py and the plots read."""

CONFIG = "config.json"  # the configuration
DOMAIN = "domain.json"  # the input domain of the training data
SPLITS = "splits.json"  # the shards of each split
CHECKPOINT = "last.pt"  # everything needed to continue the run
SELECTED = "best.pt"  # the selected model, an Emulator file
METRICS = "metrics.csv"  # per-epoch metrics
TEST_REPORT = "test_report.json"
TEST_REPORT_MARKDOWN = "test_report.md"
LEARNING_CURVES = "learning_curves.png"

# A run's file -> its name in the ship directory (data/).
SHIPPED = {SELECTED: "emulator.pt", TEST_REPORT_MARKDOWN: "emulator_report.md", TEST_REPORT: "emulator_report.json",
           LEARNING_CURVES: "emulator_learning_curves.png", SPLITS: "emulator_splits.json",
           METRICS: "emulator_metrics.csv"}
