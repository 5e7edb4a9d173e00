"""The error study: grids and sweeps over seeds, statistics, attribution, claims, figures and the report."""
