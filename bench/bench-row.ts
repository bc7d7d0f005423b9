/** One line of a benchmark table: our time against the floor the peer itself needs, side by side. */
export interface BenchRow {
  /** What was measured, e.g. `ldap: read 100,000 people + groups from slapd`. */
  name: string;
  /** Our wall time, in seconds (median of the runs). */
  oursSeconds: number;
  /** The floor's wall time on the same data in the same run, in seconds (median). */
  floorSeconds: number;
  /** oursSeconds / floorSeconds. */
  ratio: number;
  /** Peak resident set size of our process, in MB. */
  peakRssMb: number;
  /** How the figures were taken (floor command, runs, sizes). */
  notes: string;
}
