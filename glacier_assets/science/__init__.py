"""Plain functions on arrays and geometries: the glaciology and the raster/vector work.

Nothing here imports Dagster or IGM; every function is tested on its own with small inputs.
"""
