import warnings

# Single-run backfill policies are how one run handles many tracks; Dagster marks the parameter beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
