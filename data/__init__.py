"""The dataset tool entry point `python data/dataset_tool.py` (implementation: sg2tf/dataset_tool/)."""
