"""Reference profiles and drift statistics against them.

At registration the champion's training frame is summarised into a :class:`ReferenceProfile`
(quantile bins and counts per numeric feature, category frequencies, a score histogram, label
balance and hold-out metrics). Monitoring bins only the new batch against that profile, so the cost
is O(batch rows) and memory O(features x bins); the reference data is never reloaded.

Statistics per feature (see docs/drift.md):

* PSI, Jensen-Shannon distance and chi-square on *deciles* of the reference (the fine bins merged
  so each group holds about 10% of the reference mass) or on categories. PSI on 100 fine bins has a
  no-drift noise floor of about (bins - 1) / rows, which would flag every small batch.
* KS and a std-normalised Wasserstein-1 distance from the fine-binned CDFs (KS is exact at the bin
  edges, hence within one reference bin mass, about 1/bins, of the raw-data KS).

Verdicts are batch-size aware: a feature drifts only when its statistic exceeds its threshold
(an effect size) AND a test for "same distribution" rejects at `alpha` for this batch size (the
chi-square homogeneity test on the same decile or category counts for PSI/JS, the two-sample KS
test for KS/Wasserstein).

Modules: `profile` (building the reference profile), `binning` (a batch against the profile's bins),
`statistics` (the statistics on binned counts), `report` (DriftReport and the per-feature verdict),
`measure` (measure_drift: one batch against a profile), `partitioned` (the same report from
per-partition counts added up: the Dask path, docs/scale.md).
"""

from evergreen.drift.binning import PSI_GROUPS, bin_counts, merge_groups
from evergreen.drift.measure import MAX_CATEGORIES, OTHER, UNSEEN, measure_drift
from evergreen.drift.profile import (
    SCORE_BINS,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    score_histogram,
)
from evergreen.drift.report import DEFAULT_ALPHA, DEFAULT_PSI_THRESHOLD, DriftReport, FeatureDrift, Statistic
from evergreen.drift.statistics import PSI_EPS, cdf_distances, chi2_homogeneity, js_distance, ks_pvalue, psi

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_PSI_THRESHOLD",
    "MAX_CATEGORIES",
    "OTHER",
    "PSI_EPS",
    "PSI_GROUPS",
    "SCORE_BINS",
    "UNSEEN",
    "CategoricalProfile",
    "DriftReport",
    "FeatureDrift",
    "NumericProfile",
    "ReferenceProfile",
    "Statistic",
    "bin_counts",
    "build_profile",
    "cdf_distances",
    "chi2_homogeneity",
    "js_distance",
    "ks_pvalue",
    "measure_drift",
    "merge_groups",
    "psi",
    "score_histogram",
]
