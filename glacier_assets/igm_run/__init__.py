"""Running IGM: the in-process model adapter (`model.py`) and the child process Dagster Pipes
launches (`__main__.py`). Importing this package does not import TensorFlow or IGM."""
