// Metric metadata as data: reports sort and colour by `higherIsBetter` and record `version`,
// so no report special-cases a metric's name.
export interface MetricInfo {
  name: string;
  higherIsBetter: boolean;
  /** Bumped whenever the computation changes, so stored results are never compared across versions. */
  version: number;
  unit: '%' | 'ratio' | 'count';
  describe: string;
}
