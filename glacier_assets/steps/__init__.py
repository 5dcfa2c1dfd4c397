"""Each step of the chain for one glacier (or one epoch, or the region), as plain functions over
files: one module per stage, in the chain's order.

* `domain`: the model domain of a glacier (100 m grid, DEM, forcing, first guess);
* `inputs`: what its simulation is calibrated to, and the fingerprints today's inputs give;
* `rheology`: the regional rheology factor from reference volumes;
* `epoch`: thickness, mask and outline of a glacier at an epoch;
* `regional`: the region's outline file of an epoch;
* `reports`: the calibration report and the audit of the published files;
* `evaluation`: a simulation against independent observations.

The simulation itself is `igm_run/`, its file `simulation_file.py`. The Dagster assets in `assets/`
are thin wrappers around these; tests call them directly too. Inputs: the validated outline
inventory (GeoDataFrame) and the region spec; outputs: files in open formats and a dict of figures
for metadata.
"""
