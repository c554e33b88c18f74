"""Dataset creation: `python data/dataset_tool.py` (or `python -m data.dataset_tool`)."""
